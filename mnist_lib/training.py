"""The training loop: device, AdamW + one-cycle schedule, one epoch, evaluation, and `fit` over the epochs.

Nothing here touches the disk: `runs.train` wraps `fit` with the run record (folder, log, checkpoints, resume).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .config import TrainConfig, is_device_name
from .data import AugmentConfig, TensorSplit, augment_batch
from .errors import ConfigError
from .models import batchnorm_layers, conv_input_grads, create_model

EVAL_BATCH = 250  # a 250-image batch stays in a 2-core CPU's caches: 1.6x faster than 1,000, the same logits


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes cuda, then mps, then cpu; a named device that is not there is a ConfigError."""
    if not is_device_name(name):
        raise ConfigError(f"device={name!r} is invalid: device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        raise ConfigError(f"device={name!r} is invalid: no such CUDA device here (use device='auto' or 'cpu')")
    if device.type == "mps" and not mps:
        raise ConfigError(f"device={name!r} is invalid: MPS is not available here (use device='auto' or 'cpu')")
    return device


def progress_style() -> str:
    """How training shows progress here: 'widget' bars in a notebook front end that displays them (JupyterLab
    and Jupyter Server set JPY_SESSION_NAME; Colab; VS Code), 'none' in a headless kernel (papermill, nbval: their
    saved notebooks stay free of widget state and bar floods) or with TQDM_DISABLE set, else 'text' (a terminal)."""
    if os.environ.get("TQDM_DISABLE"):
        return "none"
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if shell is None or not hasattr(shell, "kernel"):
        return "text"
    front_end = "JPY_SESSION_NAME" in os.environ or "google.colab" in sys.modules or "VSCODE_PID" in os.environ
    return "widget" if front_end else "none"


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm bar in the style of progress_style() (disabled when not `enabled`)."""
    style = progress_style() if enabled else "none"
    if style == "widget":
        from tqdm.notebook import tqdm as widget_bar  # imports IPython: only inside a notebook

        return widget_bar(total=total, desc=desc, leave=False, mininterval=2)
    return tqdm(total=total, desc=desc, leave=False, mininterval=2, disable=style == "none")


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Optimiser steps in one epoch (the last batch may be smaller)."""
    return -(-images // batch_size)


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic, full-precision CUDA kernels for the duration of a run; the process's settings are restored.

    With warn_only, an operation that has no deterministic CUDA kernel warns instead of failing, and cuBLAS
    is only deterministic if CUBLAS_WORKSPACE_CONFIG is set before its first use (set here if absent, which
    is too late once the process has used cuBLAS). cuDNN's TF32 convolutions (on by default on Ampere and newer)
    are switched off: they round convolution inputs to a 10-bit mantissa, so a GPU run's recorded accuracy need
    not be what its checkpoint gives on a CPU.
    """
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
        torch.backends.cudnn.allow_tf32 = saved[4]


def make_optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int):
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                    weight_decay=config.weight_decay, foreach=True)
    else:
        # foreach: one multi-tensor update instead of a loop over the parameters; the same values bit for bit
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                      foreach=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    return optimizer, scheduler


def lr_schedule(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate of every optimiser step of a run (OneCycleLR is deterministic)."""
    optimizer, scheduler = make_optimizer(nn.Linear(1, 1), config, steps_per_epoch)
    rates = []
    for _ in range(config.epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def epoch_seed(seed: int, epoch: int) -> int:
    # One seed per epoch, so a run resumed at epoch k draws exactly what an uninterrupted run draws.
    return seed * 100_003 + epoch


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """average <- d * average + (1 - d) * model, weights and BatchNorm statistics alike, with d = min(decay,
    (1 + step) / (10 + step)): the warm-up keeps the first epochs' average from holding on to the initial weights.
    (Not torch.optim.swa_utils.AveragedModel: it reads its step counter back from the device on every update,
    a host sync per batch on a GPU, and has no warm-up.) `step` counts optimiser steps so far, a host integer
    (train_one_epoch passes the scheduler's count, which a resumed run restores)."""
    d = min(decay, (1 + step) / (10 + step))
    for averaged, current in zip([*average.parameters(), *average.buffers()], [*model.parameters(), *model.buffers()],
                                 strict=True):
        if averaged.is_floating_point():
            averaged.lerp_(current, 1 - d)
        else:  # BatchNorm's batch counter
            averaged.copy_(current)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> None:
    """Set every BatchNorm layer's running mean and variance to the mean over `images` of its per-batch statistics
    (`batch_size` images a batch; the variances unbiased within each batch), the rest of the model in eval mode
    (no dropout). The running averages kept in training describe the last augmented, perhaps noisy, batches;
    clean inputs can differ from those."""
    norms = batchnorm_layers(model)
    was_training, momenta = model.training, [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average over the batches seen
        norm.train()
    for batch in images.split(batch_size):
        model(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.train(was_training)


def recalibration_images(train: TensorSplit, config: TrainConfig) -> torch.Tensor:
    """The clean training images a run recomputes BatchNorm statistics on: config.recalibrate_bn of them, the
    same every epoch, drawn with a generator of their own (so the run's other random draws do not move)."""
    if config.recalibrate_bn > len(train):
        raise ConfigError(f"recalibrate_bn={config.recalibrate_bn!r} is invalid: the training split has only "
                          f"{len(train):,} images")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))
    return train.images[order[:config.recalibrate_bn].to(train.images.device)]


@dataclass
class TrainState:
    """Everything a run needs to continue: weights, optimiser, schedule, the history so far and, with
    config.ema_decay, the moving average of the weights (`average`), which is what gets evaluated and saved."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    history: list[dict] = field(default_factory=list)
    average: nn.Module | None = None

    @classmethod
    def new(cls, config: TrainConfig, steps: int, device: torch.device) -> TrainState:
        """Fresh weights (from config.seed), optimiser, a schedule of `steps` per epoch and, with config.ema_decay,
        the moving average (starting as a copy of the weights)."""
        torch.manual_seed(config.seed)
        model = create_model(config.model, **config.model_args).to(device)
        average = copy.deepcopy(model).requires_grad_(False) if config.ema_decay else None
        return cls(model, *make_optimizer(model, config, steps), average=average)

    @property
    def evaluated(self) -> nn.Module:
        """The weights a run reports and saves: the moving average if there is one, else the trained weights."""
        return self.model if self.average is None else self.average

    def state_dict(self) -> dict:
        """'state_dict' holds the evaluated weights (what evaluate and predict load); with an average, the trained
        weights go in 'trained_state_dict' (what resuming continues from)."""
        trained = {} if self.average is None else {"trained_state_dict": self.model.state_dict()}
        return {"state_dict": self.evaluated.state_dict(), **trained, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.evaluated.load_state_dict(state["state_dict"])
        if self.average is not None:
            self.model.load_state_dict(state["trained_state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = list(state["history"])


@torch.no_grad()
def logits(model: nn.Module, split: TensorSplit, batch_size: int | None = None) -> torch.Tensor:
    """The model's logits for a whole split, in order (eval mode), `batch_size` (default EVAL_BATCH) at a time."""
    model.eval()
    return torch.cat([model(images) for images, _ in split.batches(batch_size or EVAL_BATCH)])


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share (%) of rows whose largest logit is the label."""
    return (outputs.argmax(1) == labels).float().mean().item() * 100


def evaluate(model: nn.Module, split: TensorSplit) -> dict:
    """Loss, accuracy (%) and per-class accuracy (%) on a split."""
    outputs = logits(model, split)
    per_class = [accuracy(outputs[split.labels == digit], split.labels[split.labels == digit]) for digit in range(10)]
    return {"loss": F.cross_entropy(outputs, split.labels).item(), "accuracy": accuracy(outputs, split.labels),
            "per_class_accuracy": per_class, "count": len(split)}


def train_one_epoch(state: TrainState, train: TensorSplit, config: TrainConfig, generator: torch.Generator,
                    desc: str = "", progress: bool = True) -> dict:
    """One pass over shuffled (and, with config.augment, augmented, except in the last config.clean_last_epochs
    epochs) batches, the convolutions' input gradients computed as config.conv_input_grads says. The epoch is
    number len(state.history) + 1 (fit appends each epoch's row after it).

    Returns the mean train loss and accuracy (%) and the learning rates of the epoch's first and last steps.
    """
    model, optimizer, scheduler = state.model.train(), state.optimizer, state.scheduler
    augment = AugmentConfig(erase_prob=config.erase_prob, noise_std=config.noise_std, noise_prob=config.noise_prob,
                            warp=config.warp).scaled(config.augment_strength)
    # Summed on the device and read once at the end: no host sync per batch on a GPU.
    loss_sum = torch.zeros((), device=train.images.device)
    correct = torch.zeros((), device=train.images.device, dtype=torch.long)
    steps = steps_per_epoch(len(train), config.batch_size)
    lr_start = optimizer.param_groups[0]["lr"]
    augmenting = config.augment and len(state.history) < config.epochs - config.clean_last_epochs
    with progress_bar(steps, desc, progress) as bar, conv_input_grads(config.conv_input_grads):
        for images, labels in train.batches(config.batch_size, generator):
            if augmenting:
                images = augment_batch(images, generator, augment)
            outputs = model(images)
            loss = F.cross_entropy(outputs, labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr_end = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            if state.average is not None:
                update_average(state.average, model, config.ema_decay, scheduler.last_epoch)
            loss_sum += loss.detach() * len(labels)
            correct += (outputs.argmax(1) == labels).sum()
            bar.update()
    return {"train_loss": loss_sum.item() / len(train), "train_acc": correct.item() / len(train) * 100,
            "lr_start": lr_start, "lr_end": lr_end}


EpochCallback = Callable[[TrainState, torch.Tensor], None]


def fit(config: TrainConfig, train: TensorSplit, test: TensorSplit, state: TrainState | None = None,
        on_epoch: EpochCallback | None = None, stop_after: int | None = None, progress: bool = True) -> TrainState:
    """Train `config` on `train`, evaluating `test` after every epoch; continue `state` if given.

    `on_epoch(state, test_logits)` runs after each epoch (the run record saves the checkpoint there);
    `stop_after` ends after that many epochs, as a kill would.
    """
    device = train.images.device
    state = state or TrainState.new(config, steps_per_epoch(len(train), config.batch_size), device)
    last_epoch = config.epochs if stop_after is None else min(config.epochs, len(state.history) + stop_after)
    recalibration_set = recalibration_images(train, config) if config.recalibrate_bn else None
    with deterministic(device):
        for epoch in range(len(state.history) + 1, last_epoch + 1):
            started = time.perf_counter()
            torch.manual_seed(epoch_seed(config.seed, epoch))  # dropout
            generator = torch.Generator(device=device).manual_seed(epoch_seed(config.seed, epoch))  # order, augment
            trained = train_one_epoch(state, train, config, generator, f"epoch {epoch}/{config.epochs}", progress)
            # With recalibration, the accuracy with the running statistics too: its gain, measured within the run.
            running_bn_acc = {}
            if recalibration_set is not None:
                running_bn_acc = {"running_bn_test_acc": accuracy(logits(state.evaluated, test), test.labels)}
                recalibrate_batchnorm(state.evaluated, recalibration_set)
            test_logits = logits(state.evaluated, test)
            # With an average, the trained weights' own accuracy too: the average's gain, measured within the run.
            trained_weights_acc = ({} if state.average is None else
                                   {"trained_weights_test_acc": accuracy(logits(state.model, test), test.labels)})
            state.history.append({
                "epoch": epoch,
                "train_loss": trained["train_loss"],
                "train_acc": trained["train_acc"],
                "test_loss": F.cross_entropy(test_logits, test.labels).item(),
                "test_acc": accuracy(test_logits, test.labels),
                "lr_start": trained["lr_start"],
                "lr_end": trained["lr_end"],
                **trained_weights_acc,
                **running_bn_acc,
                "seconds": time.perf_counter() - started,
            })
            if on_epoch:
                on_epoch(state, test_logits)
    return state
