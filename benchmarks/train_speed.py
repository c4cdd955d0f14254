"""Training-speed benchmark: the library's tensor pipeline against torchvision's per-sample pipeline.

Run from the repo root (MNIST from --data-dir or $MNIST_DATA_DIR):
    python benchmarks/train_speed.py [--skip-full-run]

(a) augmented-batch throughput with no model: median of full passes over the 60k training images (the
    torchvision loader's worker start-up is part of every pass, as it is of every epoch);
(b) one SuperLight training epoch fed each way;
(c) the wall time of a complete 15-epoch SuperLight run (augmentation + test evaluation every epoch).
Ends with machine-readable lines: data_ratio=, epoch_ratio=, full_run_seconds=.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mnist_lib.data import augment_batch, load_split, mnist_dataset, torchvision_transform
from mnist_lib.engine import TrainConfig, fit, make_optimizer
from mnist_lib.models import create_model

BATCH = 128


def torchvision_loader(data_dir) -> DataLoader:
    dataset = mnist_dataset(True, data_dir, download=False, transform=torchvision_transform())
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2, persistent_workers=False)


def tensor_batches(train, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    for images, labels in train.batches(BATCH, generator):
        yield augment_batch(images, generator), labels


def throughput(make_batches, repeats: int) -> float:
    """Median images per second over `repeats` full passes of a fresh iterator of (images, labels) batches."""
    rates = []
    for _ in range(repeats):
        seen, started = 0, time.perf_counter()
        for images, _ in make_batches():
            seen += len(images)
        rates.append(seen / (time.perf_counter() - started))
    return statistics.median(rates)


def train_epoch(batches, steps_per_epoch: int) -> float:
    """Seconds for one SuperLight epoch (forward, backward, AdamW + OneCycleLR step) on the given batches."""
    torch.manual_seed(0)
    model = create_model("superlight").train()
    optimizer, scheduler = make_optimizer(model, TrainConfig(), steps_per_epoch)
    started = time.perf_counter()
    for images, labels in batches:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default: $MNIST_DATA_DIR, else data/)")
    parser.add_argument("--repeats", type=int, default=3, help="full passes per pipeline in part (a); median")
    parser.add_argument("--skip-full-run", action="store_true", help="leave out part (c)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads")

    # (c) first, in a process with no DataLoader workers around yet.
    full_run = float("nan")
    if not args.skip_full_run:
        with tempfile.TemporaryDirectory() as runs_dir:
            started = time.perf_counter()
            result = fit(TrainConfig(model="superlight", epochs=15), data_dir=args.data_dir, download=False,
                         runs_dir=runs_dir, verbose=False)
            full_run = time.perf_counter() - started
        full_run_accuracy = result.metrics["summary"]["final_test_acc"]

    train = load_split(True, args.data_dir, download=False)
    steps = -(-len(train) // BATCH)
    tensor_rate = throughput(lambda: tensor_batches(train), args.repeats)
    torchvision_rate = throughput(lambda: iter(torchvision_loader(args.data_dir)), args.repeats)
    data_ratio = tensor_rate / torchvision_rate
    print("(a) augmented batches, no model (images/s)")
    print(f"    tensor pipeline (affine_grid/grid_sample per batch): {tensor_rate:10,.0f}")
    print(f"    torchvision RandomAffine + DataLoader(2 workers):    {torchvision_rate:10,.0f}")
    print(f"    ratio: {data_ratio:.1f}x")

    tensor_epoch = train_epoch(tensor_batches(train), steps)
    torchvision_epoch = train_epoch(iter(torchvision_loader(args.data_dir)), steps)
    epoch_ratio = torchvision_epoch / tensor_epoch
    print("(b) one SuperLight training epoch (s)")
    print(f"    tensor pipeline:      {tensor_epoch:6.1f}")
    print(f"    torchvision pipeline: {torchvision_epoch:6.1f}")
    print(f"    ratio: {epoch_ratio:.1f}x")

    if not args.skip_full_run:
        print("(c) complete 15-epoch SuperLight run, augmentation + test evaluation every epoch (measured first)")
        print(f"    {full_run:.0f} s; final-epoch test accuracy {full_run_accuracy:.2f}%")

    print(f"data_ratio={data_ratio:.2f}")
    print(f"epoch_ratio={epoch_ratio:.2f}")
    print(f"full_run_seconds={full_run:.1f}")


if __name__ == "__main__":
    main()
