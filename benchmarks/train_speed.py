"""Training-speed benchmark: every figure side by side from one invocation, as ratios.

Run from the repo root (MNIST from --data-dir or $MNIST_DATA_DIR):
    python benchmarks/train_speed.py [--device cpu|cuda] [--skip-full-run]

(a) augmented-batch throughput with no model: the library's tensor pipeline against torchvision's per-sample
    pipeline (RandomAffine + DataLoader with 2 workers), median of full passes over the 60k training images;
(b) one SuperLight training epoch fed each way;
(c) engine changes in fresh processes taken in turn (median of rounds), each row on top of the one above:
    ms per training step, seconds per test-set evaluation (as ratios against the first row, the engine when
    the speed work began) and page faults per training step. The candidates not adopted run on top of the
    engine now;
(d) a complete 15-epoch SuperLight run (augmentation + test evaluation every epoch) with the engine before and
    now, each in a fresh process: their final accuracies, wall times and ratio, and whether the run now has the
    committed series' seed-1 history (it should, on the CPU kind that trained the series).
Ends with machine-readable lines: data_ratio=, epoch_ratio=, full_run_seconds=, full_run_ratio=.

    python benchmarks/train_speed.py --paired light lightest superlight

measures instead one pair of engines in one process, the engine now against the same without its bit-exact
changes (undo_bit_exact_changes), alternating 30-step blocks (12 of each, the first 2 left out as warm-up): on
a shared machine whose speed drifts within seconds, a paired ratio resolves a few percent where (c) cannot.
`--paired-against bf16` pairs the engine with itself under bfloat16 autocast instead, and
`--paired-conv-input-grads native` runs both engines with oneDNN's input gradients (autocast takes those anyway,
so the pair then differs in precision alone).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from mnist_lib import models, training
from mnist_lib.config import TrainConfig
from mnist_lib.data import augment_batch, load_split, mnist_dataset, torchvision_transform
from mnist_lib.models import create_model
from mnist_lib.records import committed_run

BATCH = 128
STEP_IMAGES = 128 * 120  # images per timed block in (c)
# (c): name -> (what it is, adopted?), cumulative: each adopted row runs on top of the rows above it, and the
# candidates not adopted on top of the engine now ("bit_exact").
VARIANTS = {
    "before": ("engine before (oneDNN's input-gradient kernel)", "-"),
    "input_grad": ("+ input gradients as forward convs (models.Conv2d)", "yes"),
    "bit_exact": ("+ channels_last pooling, in-place ReLU, foreach AdamW", "yes"),
    "fused_adamw": ("+ AdamW(fused=True)", "no"),
    "channels_last": ("+ channels_last memory format (model and batches)", "no"),
    "compile": ("+ torch.compile(model) (inductor)", "no"),
}
ENGINE_NOW = "bit_exact"


def cpu_description() -> str:
    flags = set()
    if platform.system() == "Linux":
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = {f for f in line.split(":")[1].split() if f.startswith(("avx", "fma", "amx"))}
                break
    return (f"{platform.machine()}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads, flags: {' '.join(sorted(flags)) or 'unknown'}")


def engine_config(variant: str, device: str) -> TrainConfig:
    """The settings of `variant`: native input gradients for "before", forward-conv (the default) otherwise."""
    return TrainConfig(device=device, conv_input_grads="native" if variant == "before" else "forward-conv")


class SeriesMaxPool2d(nn.MaxPool2d):
    """models.MaxPool2d as it was when the committed series was trained: channels_last only in evaluation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and not torch.is_grad_enabled() and not torch.jit.is_tracing():
            return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()
        return super().forward(x)


def undo_bit_exact_changes(state: training.TrainState) -> None:
    """The engine that trained the committed series (rows before "bit_exact"): pooling in channels_last in
    evaluation only, ReLUs that allocate their output, the optimiser's default implementation (on the CPU a loop
    over the parameters). The same values as the engine now, more slowly."""
    for module in state.model.modules():
        for name, child in module.named_children():
            if isinstance(child, models.MaxPool2d):
                setattr(module, name, SeriesMaxPool2d(child.kernel_size, child.stride, child.padding, child.dilation,
                                                      ceil_mode=child.ceil_mode))
            elif isinstance(child, nn.ReLU):
                child.inplace = False
    for group in state.optimizer.param_groups:
        group["foreach"] = None


def worker(variant: str, data_dir, device: str) -> dict:
    """Timings of one variant, in this (fresh) process."""
    target = training.pick_device(device)
    config = engine_config(variant, str(target))
    train_split = load_split(True, data_dir, target, download=False, limit=STEP_IMAGES)
    test = load_split(False, data_dir, target, download=False)
    state = training.TrainState.new(config, -(-len(train_split) // BATCH), target)
    if variant in ("before", "input_grad"):
        undo_bit_exact_changes(state)
    if variant == "fused_adamw":
        state.optimizer = torch.optim.AdamW(state.model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                            fused=True)
        state.scheduler = torch.optim.lr_scheduler.OneCycleLR(state.optimizer, max_lr=config.lr, epochs=config.epochs,
                                                              steps_per_epoch=-(-len(train_split) // BATCH))
    if variant == "compile":
        state.model = torch.compile(state.model)
    if variant == "channels_last":
        state.model.to(memory_format=torch.channels_last)
        for split in (train_split, test):
            split.images = split.images.contiguous(memory_format=torch.channels_last)
    generator = torch.Generator(device=target).manual_seed(0)
    started = time.perf_counter()
    training.train_one_epoch(state, train_split, config, generator, progress=False)  # warm-up (and compile)
    warmup = time.perf_counter() - started
    steps = -(-len(train_split) // BATCH)
    faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    training.train_one_epoch(state, train_split, config, generator, progress=False)
    step_ms = (time.perf_counter() - started) / steps * 1000
    faults_per_step = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
    training.logits(state.model, test)
    started = time.perf_counter()
    training.logits(state.model, test)
    return {"step_ms": step_ms, "eval_s": time.perf_counter() - started, "warmup_s": warmup,
            "faults_per_step": faults_per_step}


def full_run_worker(variant: str, data_dir, device: str) -> dict:
    config = engine_config(variant, device)
    target = training.pick_device(device)
    splits = [load_split(is_train, data_dir, target, download=False) for is_train in (True, False)]
    started = time.perf_counter()
    state = training.TrainState.new(config, -(-len(splits[0]) // config.batch_size), target)
    if variant == "before":
        undo_bit_exact_changes(state)
    state = training.fit(config, *splits, state=state, progress=False)
    return {"seconds": time.perf_counter() - started, "final_test_acc": state.history[-1]["test_acc"],
            "history": [{k: v for k, v in row.items() if k != "seconds"} for row in state.history]}


def paired_ratio(model: str, data_dir, device: str, against: str = "without", conv_input_grads: str = "forward-conv",
                 blocks: int = 12, steps: int = 30) -> str:
    """One line: median ms/step of the engine now and of `against` ("without": the engine without its bit-exact
    changes; "bf16": the engine now under bfloat16 autocast, uncached so that every step casts the weights just
    updated), the median (min-max) of the per-block-pair ratios (against / now), taken in alternating order, and in
    how many pairs `against` was slower."""
    config = TrainConfig(model=model, device=device, conv_input_grads=conv_input_grads)
    target = training.pick_device(device)
    images = load_split(True, data_dir, target, download=False, limit=BATCH * steps)
    now = training.TrainState.new(config, steps, target)
    other = training.TrainState.new(config, steps, target)
    if against == "without":
        undo_bit_exact_changes(other)
    precision = {"now": False, against: against == "bf16"}
    times = {"now": [], against: []}
    for block in range(blocks):
        pair = [("now", now), (against, other)]
        for name, state in pair if block % 2 else pair[::-1]:
            generator = torch.Generator(device=target).manual_seed(block)
            started = time.perf_counter()
            with torch.autocast(target.type, dtype=torch.bfloat16, enabled=precision[name], cache_enabled=False):
                training.train_one_epoch(state, images, config, generator, progress=False)
            times[name].append((time.perf_counter() - started) / steps * 1000)
    ratios = [w / n for w, n in zip(times[against][2:], times["now"][2:], strict=True)]
    return (f"{model:10s} now {statistics.median(times['now'][2:]):6.2f} ms/step, {against} "
            f"{statistics.median(times[against][2:]):6.2f}; ratio {against} / now: median "
            f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}), slower in "
            f"{sum(r > 1 for r in ratios)} of {len(ratios)} pairs")


def in_fresh_process(kind: str, variant: str, args) -> dict:
    command = [sys.executable, __file__, f"--{kind}", variant, "--device", args.device]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def torchvision_loader(data_dir) -> DataLoader:
    dataset = mnist_dataset(True, data_dir, download=False, transform=torchvision_transform())
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2, persistent_workers=False)


def tensor_batches(split, seed: int = 0):
    generator = torch.Generator(device=split.images.device).manual_seed(seed)
    for images, labels in split.batches(BATCH, generator):
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


def epoch_seconds(batches, steps_per_epoch: int, device: torch.device) -> float:
    """Seconds for one SuperLight epoch (forward, backward, AdamW + OneCycleLR step) on the given batches."""
    torch.manual_seed(0)
    model = create_model("superlight").to(device).train()
    optimizer, scheduler = training.make_optimizer(model, TrainConfig(), steps_per_epoch)
    started = time.perf_counter()
    for images, labels in batches:
        loss = F.cross_entropy(model(images.to(device)), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default: $MNIST_DATA_DIR, else data/)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="full passes per pipeline in (a); median")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of fresh processes per variant in (c)")
    parser.add_argument("--skip-full-run", action="store_true", help="leave out (d)")
    parser.add_argument("--paired", nargs="+", metavar="MODEL", help="only the paired measurement, for these models")
    parser.add_argument("--paired-against", choices=("without", "bf16"), default="without",
                        help="what --paired times the engine now against: itself without its bit-exact changes "
                             "(default) or under bfloat16 autocast")
    parser.add_argument("--paired-conv-input-grads", choices=("forward-conv", "native"), default="forward-conv",
                        help="the input gradients of both engines in --paired (default: the engine's default)")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--full-run-worker", choices=("before", ENGINE_NOW), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir, args.device)))
        return
    if args.full_run_worker:
        print(json.dumps(full_run_worker(args.full_run_worker, args.data_dir, args.device)))
        return

    device = training.pick_device(args.device)
    print(f"torch {torch.__version__}, device {device}; {cpu_description()}")
    if args.paired:
        against = {"without": "the same without its bit-exact changes", "bf16": "the same under bfloat16 autocast"}
        print(f"engine now against {against[args.paired_against]}, {args.paired_conv_input_grads} input gradients "
              "(fp32), alternating 30-step blocks in one process")
        for model in args.paired:
            print("    " + paired_ratio(model, args.data_dir, args.device, args.paired_against,
                                        args.paired_conv_input_grads))
        return
    train_split = load_split(True, args.data_dir, device, download=False)
    steps = -(-len(train_split) // BATCH)
    tensor_rate = throughput(lambda: tensor_batches(train_split), args.repeats)
    torchvision_rate = throughput(lambda: iter(torchvision_loader(args.data_dir)), args.repeats)
    data_ratio = tensor_rate / torchvision_rate
    print("(a) augmented batches, no model (images/s)")
    print(f"    tensor pipeline (affine_grid/grid_sample per batch): {tensor_rate:10,.0f}")
    print(f"    torchvision RandomAffine + DataLoader(2 workers):    {torchvision_rate:10,.0f}")
    print(f"    ratio: {data_ratio:.2f}x")

    tensor_epoch = epoch_seconds(tensor_batches(train_split), steps, device)
    torchvision_epoch = epoch_seconds(iter(torchvision_loader(args.data_dir)), steps, device)
    epoch_ratio = torchvision_epoch / tensor_epoch
    print("(b) one SuperLight training epoch (s)")
    print(f"    tensor pipeline:      {tensor_epoch:6.1f}")
    print(f"    torchvision pipeline: {torchvision_epoch:6.1f}")
    print(f"    ratio: {epoch_ratio:.2f}x")

    results = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            results[variant].append(in_fresh_process("worker", variant, args))
    median = {v: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for v, rows in results.items()}
    base = median["before"]
    print(f"(c) engine changes, each adopted row on top of those above it (median of {args.rounds} fresh processes "
          "each; ratio = before / this)")
    print(f"    {'variant':58s} {'ms/step':>8s} {'ratio':>6s} {'eval s':>7s} {'ratio':>6s} {'faults/step':>11s}"
          "  adopted")
    for variant, (label, adopted) in VARIANTS.items():
        m = median[variant]
        extra = f"  (first epoch of {STEP_IMAGES:,} images: {m['warmup_s']:.1f} s)" if variant == "compile" else ""
        print(f"    {label:58s} {m['step_ms']:8.2f} {base['step_ms'] / m['step_ms']:6.2f} {m['eval_s']:7.2f} "
              f"{base['eval_s'] / m['eval_s']:6.2f} {m['faults_per_step']:11,.0f}  {adopted}{extra}")

    full_run_seconds, full_run_ratio = float("nan"), float("nan")
    if not args.skip_full_run:
        after = in_fresh_process("full-run-worker", ENGINE_NOW, args)
        before = in_fresh_process("full-run-worker", "before", args)
        full_run_seconds, full_run_ratio = after["seconds"], before["seconds"] / after["seconds"]
        print("(d) complete 15-epoch SuperLight run, augmentation + test evaluation every epoch, fresh processes")
        for name, result in (("engine before", before), ("engine now", after)):
            print(f"    {name + ':':14s} {result['seconds']:6.1f} s, final-epoch test accuracy "
                  f"{result['final_test_acc']:.2f}%")
        committed = committed_run("superlight", augment=True, seed=1)
        same = after["history"] == [{k: v for k, v in row.items() if k != "seconds"} for row in committed["history"]]
        print(f"    engine now has the committed seed-1 history (trained on {committed['cpu_capability']}): {same}")
        print(f"    ratio: {full_run_ratio:.2f}x")

    print(f"data_ratio={data_ratio:.2f}")
    print(f"epoch_ratio={epoch_ratio:.2f}")
    print(f"full_run_seconds={full_run_seconds:.1f}")
    print(f"full_run_ratio={full_run_ratio:.2f}")


if __name__ == "__main__":
    main()
