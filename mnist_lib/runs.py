"""A training run on disk: its folder (under runs/ unless told otherwise), `train.log`, `metrics.json` and
`checkpoint.pt` (both rewritten atomically after every epoch), resuming after a kill, and reading runs back.

    run = train(TrainConfig(model="superlight"))   # training.fit, recorded
    run = train(resume="runs/<run>/checkpoint.pt")
"""

from __future__ import annotations

import io
import json
import os
import platform
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from .config import TrainConfig
from .data import TensorSplit, load_split, repo_root, split_validation
from .errors import ConfigError, UserError
from .models import count_parameters, create_model
from .training import TrainState, fit, logits, pick_device, steps_per_epoch

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
TRAIN_LOG = "train.log"


class CheckpointError(UserError):
    """The file is missing, truncated, not one of our checkpoints, or does not fit the model code."""


class RunError(UserError):
    """A run folder that cannot be used as asked (e.g. resuming a run that is complete)."""


def default_runs_dir() -> Path:
    """Where new runs go: $MNIST_RUNS_DIR, else runs/ in the repo (git-ignored; the current folder outside a
    checkout). Never training-logs/: a run enters the committed record only by `python -m mnist_lib promote`."""
    if os.environ.get("MNIST_RUNS_DIR"):
        return Path(os.environ["MNIST_RUNS_DIR"])
    return repo_root() / "runs"


def committed_runs_dir() -> Path:
    """training-logs/ of the checkout: the committed record, whatever $MNIST_RUNS_DIR says."""
    return repo_root() / "training-logs"


def atomic_write(path: Path, payload: bytes) -> None:
    """Write a temp file beside `path`, then rename it over `path`: a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def on_cpu(value):
    """`value` (tensors, or dicts, lists and tuples of them) with every tensor moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(item) for item in value)
    return value


def save_checkpoint(path: Path, state: dict) -> None:
    """Written atomically, with CPU tensors: a GPU run's checkpoint loads on any machine with a plain
    `torch.load(path, weights_only=True)` (resuming on a GPU moves it back)."""
    buffer = io.BytesIO()
    torch.save(on_cpu(state), buffer)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint as plain types (weights_only): model name, config, weights, optimiser, history, ..."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (pass the checkpoint.pt of a run directory)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # garbage can make the unpickler raise anything (KeyError, ...)
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120]}" if str(error).strip() else \
            type(error).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({reason}); it may be truncated or not a file "
                              "written by mnist_lib") from None
    required = {"model_name", "config", "state_dict", "history", "parameters"}
    if not isinstance(state, dict) or not required <= state.keys():
        raise CheckpointError(f"{path} is a torch file but not an mnist_lib checkpoint (needs keys {sorted(required)})")
    return state


def model_from_checkpoint(state: dict, device: torch.device | str = "cpu", source: str = "the checkpoint") -> nn.Module:
    """The checkpoint's model in eval mode; CheckpointError if the model code no longer fits its weights."""
    config = TrainConfig.from_dict(state["config"])
    try:
        model = create_model(state["model_name"], **config.model_args)
        model.load_state_dict(state["state_dict"])
    except (ConfigError, RuntimeError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0])[:160]
        raise CheckpointError(f"{source} does not fit the model code: {state['model_name']!r}, {reason}") from None
    return model.to(device).eval()


def load_model(checkpoint: str | os.PathLike, device: torch.device | str = "cpu") -> nn.Module:
    """The model saved in a checkpoint file, in eval mode (e.g. a listed run's `checkpoint`)."""
    return model_from_checkpoint(load_checkpoint(checkpoint), device, source=str(checkpoint))


def summarize(history: list[dict]) -> dict:
    """Final-epoch, best (with its epoch) and last-3-epochs range of the test accuracy."""
    accuracies = [row["test_acc"] for row in history]
    best = max(range(len(accuracies)), key=accuracies.__getitem__)
    return {
        "final_test_acc": accuracies[-1],
        "best_test_acc": accuracies[best],
        "best_epoch": history[best]["epoch"],
        "last3_min": min(accuracies[-3:]),
        "last3_max": max(accuracies[-3:]),
        "final_train_acc": history[-1]["train_acc"],
        "epochs_run": len(history),
    }


def format_epoch(row: dict, epochs: int, split: str = "test") -> str:
    trained = f" (trained weights {row['trained_weights_test_acc']:.2f}%)" if "trained_weights_test_acc" in row else ""
    if "running_bn_test_acc" in row:
        trained += f" (running BatchNorm statistics {row['running_bn_test_acc']:.2f}%)"
    return (
        f"epoch {row['epoch']:2d}/{epochs} | train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}% "
        f"| {split} loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}%{trained} "
        f"| lr {row['lr_start']:.5f}->{row['lr_end']:.5f} | {row['seconds']:.1f}s"
    )


def format_summary(metrics: dict) -> str:
    s, split = metrics["summary"], metrics.get("evaluated_on", "test")
    return (
        f"done: final-epoch {split} acc {s['final_test_acc']:.2f}% | last 3 epochs {s['last3_min']:.2f}-"
        f"{s['last3_max']:.2f}% | best {s['best_test_acc']:.2f}% at epoch {s['best_epoch']} | "
        f"{metrics['wall_seconds']:.0f}s on {metrics['device']}"
    )


@dataclass
class Run:
    """A run folder and, once trained, its final model and test-set logits."""

    run_dir: Path
    metrics: dict
    model: nn.Module | None = None
    test_logits: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def history(self) -> list[dict]:
        return self.metrics["history"]

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT

    def log(self, line: str, echo: bool) -> None:
        with open(self.run_dir / TRAIN_LOG, "a") as log:
            log.write(line + "\n")
        if echo:
            print(line, flush=True)

    def save(self, state: TrainState) -> None:
        """After an epoch: checkpoint first, then metrics.json (rebuilt from the checkpoint on resume)."""
        config = TrainConfig.from_dict(self.metrics["config"])
        self.metrics.update(history=state.history, wall_seconds=sum(row["seconds"] for row in state.history),
                            summary=summarize(state.history),
                            status="complete" if len(state.history) == config.epochs else "running")
        header = {key: value for key, value in self.metrics.items() if key not in ("history", "summary")}
        save_checkpoint(self.checkpoint, {"model_name": config.model, "config": config.to_dict(),
                                          "parameters": self.metrics["parameters"], "metrics": header,
                                          **state.state_dict()})
        atomic_write(self.run_dir / METRICS, json.dumps(self.metrics, indent=2).encode())


def device_record(device: torch.device) -> dict:
    """The device as a run records it: its name and, on a GPU, the GPU's model (timings depend on both)."""
    return {"device": str(device), **({"gpu": torch.cuda.get_device_name(device)} if device.type == "cuda" else {})}


def engine_record(config: TrainConfig, device: torch.device) -> dict:
    """The kernels that train a run: the CPU's instruction set as torch uses it, and the conv input gradients
    (config.conv_input_grads applies on the CPU only; runs recorded before that key took "native")."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "conv_input_grads": config.conv_input_grads if device.type == "cpu" else "native"}


def _new_run(root: Path, config: TrainConfig, model: nn.Module, device: torch.device, train: TensorSplit,
             test: TensorSplit) -> Run:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = "-".join([config.model, "aug" if config.augment else "noaug", *(["val"] if config.validation else []),
                     f"seed{config.seed}", stamp])
    if root.exists() and not root.is_dir():
        raise RunError(f"runs folder {root} is a file; pass a folder (or leave it out for runs/)")
    run_dir, n = root / base, 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{base}-{n}"
    try:
        run_dir.mkdir(parents=True)
    except OSError as error:
        raise RunError(f"cannot create a run folder under {root} ({error.strerror}); pass a writable folder") from None
    return Run(run_dir, {
        "run": run_dir.name,
        "started": datetime.now().isoformat(timespec="seconds"),
        "model": config.model,
        "parameters": count_parameters(model),
        "config": config.to_dict(),
        **device_record(device),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        **engine_record(config, device),
        "train_images": len(train),
        "test_images": len(test),
        "evaluated_on": evaluated_on(config),
        "steps_per_epoch": steps_per_epoch(len(train), config.batch_size),
        "wall_seconds": 0.0,
        "history": [],
        "status": "running",
    })


RESUME_KEYS = {"optimizer", "scheduler", "metrics"}


def _resumed_run(checkpoint: Path, state: dict, config: TrainConfig, device: torch.device) -> Run:
    """The run folder of `checkpoint` with its record rebuilt from the checkpoint: metrics.json may lag it by an
    epoch after a kill, and train.log may lack the epoch lines (and the summary) the kill cut off."""
    run = Run(checkpoint.resolve().parent, {**state["metrics"], "history": state["history"]})
    run.metrics.pop("gpu", None)  # the device may change on resume
    run.metrics.update(**device_record(device), config=config.to_dict())
    for key, value in engine_record(config, device).items():  # a resume elsewhere: "AVX2, then AVX512"
        recorded = run.metrics.get(key) or ("native" if key == "conv_input_grads" else "not recorded")
        run.metrics[key] = recorded if recorded.split(", then ")[-1] == value else f"{recorded}, then {value}"
    epochs = config.epochs
    log = run.run_dir / TRAIN_LOG
    lines = log.read_text().splitlines() if log.exists() else []
    for row in state["history"][sum(line.startswith("epoch ") for line in lines):]:
        run.log(format_epoch(row, epochs, evaluated_on(config)), echo=False)
    if len(state["history"]) == epochs:
        complete = (run.run_dir / METRICS).exists() and json.loads((run.run_dir / METRICS).read_text()).get(
            "status") == "complete" and any(line.startswith("done:") for line in lines)
        if complete:
            raise RunError(f"run {run.run_dir.name} is complete ({epochs}/{epochs} epochs); there is nothing to "
                           "resume. Start a new run instead.")
    return run


def run_splits(config: TrainConfig, data_dir: str | os.PathLike | None = None, device: torch.device | str = "cpu",
               download: bool = True) -> tuple[TensorSplit, TensorSplit]:
    """The (train, evaluation) splits of a run: training and test set, or with `config.validation` the first
    50,000 and the last 10,000 training images; cut to train_limit / test_limit."""
    if config.validation:
        train, held_out = split_validation(load_split(True, data_dir, device, download))
    else:
        train, held_out = load_split(True, data_dir, device, download), load_split(False, data_dir, device, download)
    return train.head(config.train_limit), held_out.head(config.test_limit)


def evaluated_on(config: TrainConfig) -> str:
    """What a run's per-epoch 'test' numbers were measured on."""
    return "validation" if config.validation else "test"


def train(
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    runs_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    train_split: TensorSplit | None = None,
    test_split: TensorSplit | None = None,
    verbose: bool = True,
    stop_after: int | None = None,
) -> Run:
    """Train `config` and record it as a new run folder under `runs_dir` (default: see default_runs_dir).

    `resume` continues the run of that checkpoint at its next epoch with its recorded settings (a `config`
    passed with it may only differ in `device`). `train_split`/`test_split` may be passed pre-loaded;
    otherwise they are loaded here. `stop_after` ends after that many epochs, as a kill would.
    """
    checkpoint = load_checkpoint(resume) if resume else None
    if checkpoint is not None:
        if not RESUME_KEYS <= checkpoint.keys():
            raise CheckpointError(f"{resume} was written by an older mnist_lib without the training state; it can be "
                                  "evaluated but not resumed")
        recorded = TrainConfig.from_dict(checkpoint["config"])
        if config is not None:
            changed = [name for name, value in config.to_dict().items()
                       if name != "device" and value != getattr(recorded, name)]
            if changed:
                raise ConfigError(f"resume continues a run with its recorded settings; {', '.join(changed)} "
                                  "differ from the run's (only device may change)")
            recorded.device = config.device
        config = recorded
    config = (config or TrainConfig()).validate()
    device = pick_device(config.device)
    if train_split is None or test_split is None:
        train_split, test_split = run_splits(config, data_dir, device, download)
    train_split, test_split = (TensorSplit(s.images.to(device), s.labels.to(device)) for s in (train_split, test_split))

    state = TrainState.new(config, steps_per_epoch(len(train_split), config.batch_size), device)
    if checkpoint is not None:
        model_from_checkpoint(checkpoint, source=str(resume))  # a CheckpointError if the weights do not fit
        state.load_state_dict(checkpoint)
        run = _resumed_run(Path(resume), checkpoint, config, device)
        if len(state.history) < config.epochs:
            run.log(f"resumed from {Path(resume).name} after epoch {len(state.history)} on {device}", verbose)
        else:  # killed after the last checkpoint: only the record needed finishing
            run.save(state)
            run.log(format_summary(run.metrics), verbose)
    else:
        run = _new_run(Path(runs_dir) if runs_dir else default_runs_dir(), config, state.model, device,
                       train_split, test_split)
        run.log(f"{run.run_dir.name}: {config.model} ({run.metrics['parameters']:,} parameters) on {device}; "
                f"config {json.dumps(config.to_dict())}", verbose)

    def record(state: TrainState, test_logits: torch.Tensor) -> None:
        run.save(state)
        run.log(format_epoch(state.history[-1], config.epochs, evaluated_on(config)), verbose)
        if len(state.history) == config.epochs:
            run.log(format_summary(run.metrics), verbose)
        run.test_logits = test_logits

    fit(config, train_split, test_split, state, on_epoch=record, stop_after=stop_after, progress=verbose)
    run.model = state.evaluated.eval()
    if run.test_logits is None:
        run.test_logits = logits(run.model, test_split)
    run.test_labels = test_split.labels
    return run


def trained_on(members: list[dict]) -> str:
    """The kernels that trained `members`, one entry per kind: the GPU or the CPU's instruction set, and the conv
    input gradients (runs recorded before that key took "native"). Either changes a run's trajectory by rounding,
    so tables that set runs side by side name them."""
    kinds = {f"{m.get('gpu') or m.get('cpu_capability') or 'CPU not recorded'}, "
             f"{m.get('conv_input_grads', 'native')} input grads" for m in members}
    return "; ".join(sorted(kinds))


def settings_of(config: dict) -> dict:
    """A recorded config as the settings that make a run what it is: every TrainConfig field but the device."""
    return {key: value for key, value in TrainConfig.from_dict(config).to_dict().items() if key != "device"}


def run_dirs_like(candidates: Iterable[Path], config: TrainConfig) -> list[Path]:
    """The run folders among `candidates` recorded with `config`'s settings (the device aside), complete or
    cut off, oldest first; a folder with neither metrics.json nor a checkpoint is not a run and is left out."""
    wanted, found = settings_of(config.to_dict()), []
    for run_dir in sorted(Path(p) for p in candidates):
        if (run_dir / METRICS).exists():
            recorded = json.loads((run_dir / METRICS).read_text())["config"]
        elif (run_dir / CHECKPOINT).exists():
            recorded = load_checkpoint(run_dir / CHECKPOINT)["config"]
        else:
            continue
        if settings_of(recorded) == wanted:
            found.append(run_dir)
    return found


def is_complete(run_dir: Path) -> bool:
    return (run_dir / METRICS).exists() and json.loads((run_dir / METRICS).read_text())["status"] == "complete"


def list_runs(root: str | Path | None = None, complete_only: bool = True) -> list[dict]:
    """metrics.json of every run under `root` (default: the runs dir), oldest first, with the run folder as
    'path' and its checkpoint file as 'checkpoint'."""
    runs = []
    for path in sorted(Path(root or default_runs_dir()).glob(f"*/{METRICS}")):
        metrics = json.loads(path.read_text())
        if complete_only and metrics.get("status") != "complete":
            continue
        runs.append({**metrics, "path": str(path.parent), "checkpoint": str(path.parent / CHECKPOINT)})
    return sorted(runs, key=lambda m: (m["started"], m["run"]))


def grouped(runs: list[dict], key: Callable[[dict], Hashable]) -> dict[Hashable, list[dict]]:
    """Runs grouped by `key(metrics)`, groups in the order their first run appears."""
    groups: dict[Hashable, list[dict]] = {}
    for metrics in runs:
        groups.setdefault(key(metrics), []).append(metrics)
    return groups


def by_size(runs: list[dict]) -> list[list[dict]]:
    """Runs grouped by model, smallest model (fewest parameters) first."""
    return sorted(grouped(runs, lambda m: m["model"]).values(), key=lambda members: members[0]["parameters"])


def configuration(metrics: dict) -> tuple[str, bool]:
    """A run's configuration in the series: (model, augmentation)."""
    return metrics["model"], metrics["config"]["augment"]


def find_run(model: str, augment: bool = True, seed: int = 1, root: str | Path | None = None,
             full_data: bool = True, missing_ok: bool = False, **settings) -> dict | None:
    """The newest complete run of `model` with that augmentation and seed (on the full splits), and with the
    given `settings` (e.g. noise_std=0.3, noise_prob=0.5; by default the noise_std of the model's recipe).

    Raises FileNotFoundError when there is none, or returns None with `missing_ok`.
    """
    wanted = {"noise_std": TrainConfig(model=model).noise_std} | settings
    matches = [
        m for m in list_runs(root)
        if m["model"] == model and m["config"]["augment"] == augment and m["config"]["seed"] == seed
        and (not full_data or (m["config"]["train_limit"] is None and m["config"].get("test_limit") is None
                               and not m["config"].get("validation")))
        and all(getattr(TrainConfig.from_dict(m["config"]), name) == value for name, value in wanted.items())
    ]
    if not matches and missing_ok:
        return None
    if not matches:
        raise FileNotFoundError(f"no complete {model} run (augment={augment}, seed={seed}) under "
                                f"{root or default_runs_dir()}")
    return matches[-1]
