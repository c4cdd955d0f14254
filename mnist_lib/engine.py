"""Training engine: config, fit with per-epoch test evaluation, checkpoints and the run record."""

from __future__ import annotations

import io
import json
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .data import AugmentConfig, TensorSplit, augment_batch, load_split, repo_root
from .models import MODELS, count_parameters, create_model

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
from tqdm.auto import tqdm  # noqa: E402

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
TRAIN_LOG = "train.log"


@dataclass
class TrainConfig:
    """Every knob of a run; `validate()` turns bad values into a ValueError that names the knob."""

    model: str = "superlight"
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 1e-4
    augment: bool = True
    erase_prob: float = 0.0
    seed: int = 1
    device: str = "auto"
    train_limit: int | None = None
    test_limit: int | None = None

    def validate(self) -> TrainConfig:
        def fail(name: str, allowed: str):
            raise ValueError(f"{name}={getattr(self, name)!r} is invalid: {name} must be {allowed}")

        def is_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if self.model not in MODELS:
            fail("model", f"one of {', '.join(sorted(MODELS))}")
        for name in ("epochs", "batch_size"):
            if not is_int(getattr(self, name)) or getattr(self, name) <= 0:
                fail(name, "a positive integer")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value <= 0):
                fail(name, "a positive integer or None (the whole split)")
        if not is_int(self.seed) or self.seed < 0:
            fail("seed", "a non-negative integer")
        if not is_number(self.lr) or not 0 < self.lr <= 10:
            fail("lr", "a number in (0, 10]")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "a number >= 0")
        if not isinstance(self.augment, bool):
            fail("augment", "True or False")
        if not is_number(self.erase_prob) or not 0 <= self.erase_prob <= 1:
            fail("erase_prob", "a probability in [0, 1]")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            fail("device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes cuda, then mps, then cpu."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_runs_dir() -> Path:
    """$MNIST_RUNS_DIR, else training-logs/ in the repo (or the current folder outside a checkout)."""
    if os.environ.get("MNIST_RUNS_DIR"):
        return Path(os.environ["MNIST_RUNS_DIR"])
    return repo_root() / "training-logs"


@torch.no_grad()
def predict(model: nn.Module, split: TensorSplit, batch_size: int = 1000) -> tuple[torch.Tensor, float]:
    """Logits for a whole split (in order) and the mean cross-entropy loss."""
    model.eval()
    logits = torch.cat([model(images) for images, _ in split.batches(batch_size)])
    return logits, F.cross_entropy(logits, split.labels).item()


def evaluate(model: nn.Module, split: TensorSplit, batch_size: int = 1000) -> dict:
    """Loss, accuracy (%) and per-class accuracy (%) on a split."""
    logits, loss = predict(model, split, batch_size)
    correct = logits.argmax(1) == split.labels
    per_class = [correct[split.labels == digit].float().mean().item() * 100 for digit in range(10)]
    accuracy = correct.float().mean().item() * 100
    return {"loss": loss, "accuracy": accuracy, "per_class_accuracy": per_class, "count": len(split)}


def summarize(history: list[dict], last: int = 3) -> dict:
    """Final-epoch, best (with its epoch) and last-N-epochs range of the test accuracy."""
    accuracies = [row["test_acc"] for row in history]
    best = max(range(len(accuracies)), key=accuracies.__getitem__)
    tail = accuracies[-last:]
    return {
        "final_test_acc": accuracies[-1],
        "best_test_acc": accuracies[best],
        "best_epoch": history[best]["epoch"],
        f"last{last}_min": min(tail),
        f"last{last}_max": max(tail),
        "final_train_acc": history[-1]["train_acc"],
        "epochs_run": len(history),
    }


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temp file, then rename over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict) -> None:
    """Written atomically: a kill mid-write never leaves a broken checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class CheckpointError(ValueError):
    """The file is missing, truncated or not one of our checkpoints."""


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (pass the checkpoint.pt of a run directory)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated / foreign files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__}); it may be truncated or not a "
            "file written by mnist_lib.train"
        ) from None
    required = {"model_name", "config", "state_dict", "history", "parameters"}
    if not isinstance(state, dict) or not required <= state.keys():
        raise CheckpointError(f"{path} is a torch file but not an mnist_lib checkpoint (needs keys {sorted(required)})")
    return state


def model_from_checkpoint(state: dict, device: torch.device | str = "cpu") -> nn.Module:
    model = create_model(state["model_name"])
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()


def _epoch_seed(seed: int, epoch: int) -> int:
    # One seed per epoch, so a run resumed at epoch k draws exactly what an uninterrupted run draws.
    return seed * 100_003 + epoch


def _new_run_dir(root: Path, config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{config.model}-{'aug' if config.augment else 'noaug'}-seed{config.seed}-{stamp}"
    run_dir, n = root / base, 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{base}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


def _log(run_dir: Path, line: str, echo: bool) -> None:
    with open(run_dir / TRAIN_LOG, "a") as log:
        log.write(line + "\n")
    if echo:
        tqdm.write(line)


def _format_epoch(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']:2d}/{epochs} | train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}% "
        f"| test loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}% | lr {row['lr']:.5f} | {row['seconds']:.1f}s"
    )


def _format_summary(metrics: dict) -> str:
    s = metrics["summary"]
    return (
        f"done: final-epoch test acc {s['final_test_acc']:.2f}% | last 3 epochs {s['last3_min']:.2f}-"
        f"{s['last3_max']:.2f}% | best {s['best_test_acc']:.2f}% at epoch {s['best_epoch']} | "
        f"{metrics['wall_seconds']:.0f}s on {metrics['device']}"
    )


def _save_figures(run_dir: Path, metrics: dict, test_logits: torch.Tensor, test_labels: torch.Tensor) -> None:
    from .plots import save_run_figures  # matplotlib only once a run is complete

    save_run_figures(run_dir, metrics, test_logits.cpu(), test_labels.cpu())


@dataclass
class RunResult:
    run_dir: Path
    model: nn.Module
    history: list[dict]
    metrics: dict

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT


def make_optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int):
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    return optimizer, scheduler


def lr_schedule(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate at every optimiser step of a run (OneCycleLR is deterministic)."""
    optimizer, scheduler = make_optimizer(nn.Linear(1, 1), config, steps_per_epoch)
    rates = []
    for _ in range(config.epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def train_one_epoch(model: nn.Module, optimizer, scheduler, train: TensorSplit, config: TrainConfig,
                    generator: torch.Generator, desc: str = "", progress: bool = True) -> tuple[float, float]:
    """One pass over shuffled (and, with config.augment, augmented) batches; mean loss and accuracy (%)."""
    model.train()
    augment = AugmentConfig(erase_prob=config.erase_prob)
    loss_sum = torch.zeros((), device=train.images.device)
    correct = torch.zeros((), device=train.images.device, dtype=torch.long)
    steps = -(-len(train) // config.batch_size)
    disable = bool(os.environ.get("TQDM_DISABLE")) or not progress
    with tqdm(total=steps, desc=desc, leave=False, mininterval=2, disable=disable) as bar:
        for images, labels in train.batches(config.batch_size, generator):
            if config.augment:
                images = augment_batch(images, generator, augment)
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(labels)
            correct += (logits.argmax(1) == labels).sum()
            bar.update()
    return loss_sum.item() / len(train), correct.item() / len(train) * 100


def fit(
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    runs_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    train: TensorSplit | None = None,
    test: TensorSplit | None = None,
    verbose: bool = True,
    stop_after: int | None = None,
) -> RunResult:
    """Train `config.model`, evaluating the full test set after every epoch, and record the run.

    `resume` continues a run from its checkpoint at the next epoch, in the same run directory.
    `train`/`test` may be passed pre-loaded (tests, notebooks); otherwise they are loaded here.
    `stop_after` ends the run after that many epochs, as a kill would (resume testing).
    """
    state = load_checkpoint(resume) if resume else None
    if state is not None:
        config = TrainConfig.from_dict(state["config"])
    config = (config or TrainConfig()).validate()
    device = pick_device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)

    train = train if train is not None else load_split(True, data_dir, device, download, config.train_limit)
    test = test if test is not None else load_split(False, data_dir, device, download, config.test_limit)
    train = TensorSplit(train.images.to(device), train.labels.to(device))
    test = TensorSplit(test.images.to(device), test.labels.to(device))
    steps_per_epoch = -(-len(train) // config.batch_size)

    torch.manual_seed(config.seed)
    model = create_model(config.model).to(device)
    optimizer, scheduler = make_optimizer(model, config, steps_per_epoch)
    history: list[dict] = []
    if state is not None:
        run_dir = Path(resume).resolve().parent
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        metrics = json.loads((run_dir / METRICS).read_text())
        _log(run_dir, f"resumed from {Path(resume).name} after epoch {len(history)}", verbose)
    else:
        run_dir = _new_run_dir(Path(runs_dir) if runs_dir else default_runs_dir(), config)
        metrics = {
            "run": run_dir.name,
            "started": datetime.now().isoformat(timespec="seconds"),
            "model": config.model,
            "parameters": count_parameters(model),
            "config": asdict(config),
            "device": str(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
            "train_images": len(train),
            "test_images": len(test),
            "steps_per_epoch": steps_per_epoch,
            "wall_seconds": 0.0,
            "history": [],
        }
        _log(run_dir, f"{run_dir.name}: {config.model} ({metrics['parameters']:,} parameters) on {device}; "
             f"config {json.dumps(asdict(config))}", verbose)

    last_epoch = config.epochs if stop_after is None else min(config.epochs, len(history) + stop_after)
    for epoch in range(len(history) + 1, last_epoch + 1):
        started = time.perf_counter()
        torch.manual_seed(_epoch_seed(config.seed, epoch))  # dropout
        generator = torch.Generator(device=device).manual_seed(_epoch_seed(config.seed, epoch))  # order, augmentation
        train_loss, train_acc = train_one_epoch(model, optimizer, scheduler, train, config, generator,
                                                desc=f"epoch {epoch}/{config.epochs}", progress=verbose)
        test_logits, test_loss = predict(model, test)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": (test_logits.argmax(1) == test.labels).float().mean().item() * 100,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        metrics.update(history=history, wall_seconds=sum(r["seconds"] for r in history), summary=summarize(history),
                       status="complete" if epoch == config.epochs else "running")
        save_checkpoint(run_dir / CHECKPOINT, {
            "model_name": config.model,
            "config": asdict(config),
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": history,
            "parameters": metrics["parameters"],
        })
        atomic_write_bytes(run_dir / METRICS, json.dumps(metrics, indent=2).encode())
        _log(run_dir, _format_epoch(row, config.epochs), verbose)

        if epoch == config.epochs:
            _log(run_dir, _format_summary(metrics), verbose)
            _save_figures(run_dir, metrics, test_logits, test.labels)
    return RunResult(run_dir, model.eval(), history, metrics)
