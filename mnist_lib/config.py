"""Every training setting, declared once. Each field of TrainConfig carries its default, help text and the
values it allows; the CLI flags (`cli.py`) and the notebooks' parameter checks (`notebook.py`) are derived
from them, so a new setting is added here and nowhere else."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from .data import AugmentConfig
from .errors import ConfigError
from .models import CONV_INPUT_GRADS, MODELS, batchnorm_layers, create_model

DEVICES = ("auto", "cpu", "cuda", "mps")
OPTIMIZERS = ("adamw", "sgd")
# What a model trains with when a setting is left at None: its recipe, applied when the config is made (so
# `replace(config, model=...)` keeps values already filled in). Empty: the noise-robust recipe for SuperLight
# (noise_std 0.3, noise_prob 0.5, chosen on the validation split) cost clean test accuracy beyond the seeds' spread
# over 5 seeds (study noise-test, against the series of 2026-11; README, Noise robustness), so it stays opt-in.
MODEL_RECIPES: dict[str, dict] = {}
NO_RECIPE = {"noise_std": 0.0, "noise_prob": 1.0}  # ... and for a model without one
# Settings added after runs were recorded, with the value that reproduces what those runs did.
BEFORE_SETTING = {"noise_std": 0.0, "noise_prob": 1.0, "validation": False, "label_smoothing": 0.0,
                  "augment_strength": 1.0, "ema_decay": 0.0, "optimizer": "adamw", "recalibrate_bn": 0,
                  "warp": 0.0, "conv_input_grads": "native", "clean_last_epochs": 0}


def is_device_name(value) -> bool:
    """'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' (whether that device exists is training.pick_device's question)."""
    return value in DEVICES or (isinstance(value, str) and value.startswith("cuda:") and value[5:].isdigit())


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value) -> bool:
    return _is_int(value) and value > 0


def setting(default, help_text: str, allowed: str, check: Callable[[Any], bool]):
    """A TrainConfig field: `check(value)` is True for the values described by `allowed`."""
    extra = {"help": help_text, "allowed": allowed, "check": check}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=extra)
    return field(default=default, metadata=extra)


@dataclass
class TrainConfig:
    """One training run. `validate()` raises ConfigError naming the first bad setting."""

    model: str = setting("superlight", "model name from the registry", "a registered model name",
                         lambda value: isinstance(value, str) and value in MODELS)
    model_args: dict = setting({}, 'keyword arguments of the model, e.g. {"dropout": 0.1} for lightest',
                               "a dict of keyword arguments the model takes", lambda value: isinstance(value, dict))
    epochs: int = setting(15, "training epochs", "a positive integer", _positive_int)
    batch_size: int = setting(128, "images per optimiser step", "a positive integer", _positive_int)
    lr: float = setting(0.01, "OneCycleLR maximum learning rate", "a number in (0, 10]",
                        lambda value: _is_number(value) and 0 < value <= 10)
    weight_decay: float = setting(1e-4, "weight decay (AdamW's decoupled decay; SGD's L2 penalty)", "a number >= 0",
                                  lambda value: _is_number(value) and value >= 0)
    optimizer: str = setting("adamw", "adamw, or sgd (Nesterov momentum, cycled 0.95 -> 0.85 -> 0.95 by OneCycleLR "
                             "as AdamW's beta1 is)", "'adamw' or 'sgd'", lambda value: value in OPTIMIZERS)
    augment: bool = setting(True, "random affine augmentation of every training batch", "True or False",
                            lambda value: isinstance(value, bool))
    augment_strength: float = setting(1.0, "scale of the random affine ranges when augment is on; at 1: "
                                      f"{AugmentConfig().describe_affine()}; 0.5 halves each (erasing and pixel "
                                      "noise are not scaled)", "a number in (0, 2]",
                                      lambda value: _is_number(value) and 0 < value <= 2)
    label_smoothing: float = setting(0.0, "label smoothing of the training loss (evaluation loss stays plain)",
                                     "a number in [0, 1)", lambda value: _is_number(value) and 0 <= value < 1)
    ema_decay: float = setting(0.0, "decay of a moving average of the weights, updated after every step and warmed up "
                               "as min(decay, (1 + step) / (10 + step)), which reaches 0.998 only after about 4,500 "
                               "steps; the average is what is evaluated and saved as the run's weights (the trained "
                               "weights are kept for resuming). 0: off", "0 or a number in [0.9, 1)",
                               lambda value: _is_number(value) and (value == 0 or 0.9 <= value < 1))
    recalibrate_bn: int = setting(0, "after every epoch, recompute BatchNorm's statistics from this many clean "
                                  "(un-augmented, noise-free) training images before evaluating (the mean of their "
                                  "per-batch statistics, 250 images a batch), instead of the running averages of the "
                                  "augmented training batches; training itself is unchanged. Needs a model with "
                                  "BatchNorm; not with ema_decay. 0: off", "a non-negative integer",
                                  lambda value: _is_int(value) and value >= 0)
    warp: float = setting(0.0, "smooth random warp of training images (with augment; ignored without), on top of the "
                          f"affine: a {AugmentConfig().warp_points}x{AugmentConfig().warp_points} grid of points each "
                          "moved up to this many pixels in x and y, bicubically interpolated. 0: off",
                          "a number in [0, 2]", lambda value: _is_number(value) and 0 <= value <= 2)
    clean_last_epochs: int = setting(0, "train the last N epochs on clean images (with augment: no affine, warp, "
                                     "erasing or noise in those epochs), so that the epochs at the smallest learning "
                                     "rates fit the images the model is evaluated on. 0: augment every epoch",
                                     "an integer from 0 to epochs", lambda value: _is_int(value) and value >= 0)
    erase_prob: float = setting(0.0, "probability of random erasing per training image (with augment)",
                                "a probability in [0, 1]", lambda value: _is_number(value) and 0 <= value <= 1)
    noise_std: float | None = setting(None, "Gaussian pixel noise on training images (with augment), each one's std "
                                      "drawn from U(0, noise_std) on [0, 1] pixels; None: the model's recipe "
                                      "(none has one: 0)", "a number in [0, 1] or None",
                                      lambda value: value is None or (_is_number(value) and 0 <= value <= 1))
    noise_prob: float | None = setting(None, "share of training images that get pixel noise (with noise_std > 0); "
                                       "None: the model's recipe (none has one: 1)",
                                       "a probability in [0, 1] or None",
                                       lambda value: value is None or (_is_number(value) and 0 <= value <= 1))
    seed: int = setting(1, "seed of initial weights, batch order, augmentation and dropout", "a non-negative integer",
                        lambda value: _is_int(value) and value >= 0)
    device: str = setting("auto", "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps",
                          "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", lambda value: is_device_name(value))
    conv_input_grads: str = setting("forward-conv", "how CPU training computes a convolution's input gradient: native "
                                    "(oneDNN's backward-data kernel) or forward-conv (the same gradient as a forward "
                                    "convolution with the flipped kernel: faster per step on the CPU, the same sums in "
                                    "another order, so another trajectory). GPUs, evaluation, autocast and strided or "
                                    "grouped convs always take native",
                                    "'native' or 'forward-conv'", lambda value: value in CONV_INPUT_GRADS)
    train_limit: int | None = setting(None, "train on the first N training images only (quick runs)",
                                      "a positive integer or None (the whole split)",
                                      lambda value: value is None or _positive_int(value))
    test_limit: int | None = setting(None, "evaluate on the first N test images only (quick runs)",
                                     "a positive integer or None (the whole split)",
                                     lambda value: value is None or _positive_int(value))
    validation: bool = setting(False, "design runs: train on the first 50,000 training images and evaluate on the "
                               "last 10,000 instead of the test set", "True or False",
                               lambda value: isinstance(value, bool))

    def __post_init__(self) -> None:
        recipe = MODEL_RECIPES.get(self.model, {}) if isinstance(self.model, str) else {}
        for name, value in recipe.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for name, value in NO_RECIPE.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> TrainConfig:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not spec.metadata["check"](value):
                if spec.name == "model" and isinstance(value, str):
                    create_model(value)  # its ConfigError lists the registered names
                raise ConfigError(f"{spec.name}={value!r} is invalid: {spec.name} must be {spec.metadata['allowed']}")
        if self.clean_last_epochs and not self.augment:
            raise ConfigError(f"clean_last_epochs={self.clean_last_epochs!r} is invalid with augment=False: every "
                              "epoch is clean already (use 0)")
        if self.clean_last_epochs > self.epochs:
            raise ConfigError(f"clean_last_epochs={self.clean_last_epochs!r} is invalid: clean_last_epochs must be "
                              f"an integer from 0 to epochs ({self.epochs})")
        with torch.random.fork_rng(devices=[]):  # building a throw-away model must not move the caller's RNG
            model = create_model(self.model, **self.model_args)  # a ConfigError for arguments the model does not take
        if self.recalibrate_bn:
            if not batchnorm_layers(model):
                raise ConfigError(f"recalibrate_bn={self.recalibrate_bn!r} is invalid for {self.model}: it has no "
                                  "BatchNorm layers (use 0)")
            if self.ema_decay:
                # The average mixes its BatchNorm buffers too, so recalibrated statistics would leak into it.
                raise ConfigError(f"recalibrate_bn={self.recalibrate_bn!r} is invalid with ema_decay="
                                  f"{self.ema_decay!r}: use one of the two")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Rebuild from a run record; a setting added since the record was written takes the value that reproduces
        what the run did (BEFORE_SETTING)."""
        known = {spec.name for spec in fields(cls)}
        return cls(**{**BEFORE_SETTING, **{key: value for key, value in values.items() if key in known}})
