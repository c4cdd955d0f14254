"""The three iterations, created by name: `create_model("superlight")`, or `create_model("lightest", dropout=0.1)`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from .errors import ConfigError

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def add(cls):
        MODELS[name] = cls
        return cls

    return add


def create_model(name: str, **kwargs) -> nn.Module:
    """The registered model `name` built with `kwargs`; ConfigError for an unknown name or unusable arguments."""
    if name not in MODELS:
        raise ConfigError(f"model={name!r} is invalid: model must be one of {', '.join(sorted(MODELS))}")
    signature = inspect.signature(MODELS[name])
    try:
        signature.bind(**kwargs)
    except TypeError:
        takes = ", ".join(signature.parameters) or "no arguments"
        raise ConfigError(f"model_args={kwargs!r} is invalid: {name} takes {takes}") from None
    try:
        return MODELS[name](**kwargs)
    except (TypeError, ValueError) as error:  # e.g. nn.Dropout's range check
        raise ConfigError(f"model_args={kwargs!r} is invalid for {name}: {error}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def conv(
    c_in: int,
    c_out: int,
    kernel: int = 3,
    padding: int = 1,
    dilation: int = 1,
    norm: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Conv -> ReLU, or Conv -> BatchNorm -> ReLU when `norm` (the conv then has no bias); optional dropout."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ConvClassifier(nn.Module):
    """`features` (convolutions) then `head` (to 10 logits); subclasses define both."""

    features: nn.Sequential
    head: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten(1)


@register("light")
class LightMNIST(ConvClassifier):
    """Plain baseline: conv/ReLU stacks, two max-pools, a 7x7 conv as the classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 8), conv(8, 8), nn.MaxPool2d(2),  # 28 -> 14
            conv(8, 12), conv(12, 12), nn.MaxPool2d(2),  # 14 -> 7
            conv(12, 10, kernel=1, padding=0),
        )
        self.head = nn.Conv2d(10, 10, kernel_size=7)  # 7x7 -> 1x1 logits


@register("lightest")
class LightestMNIST(ConvClassifier):
    """Light + BatchNorm and dropout, with one more conv and a smaller 5x5 classifier: fewer parameters."""

    def __init__(self, dropout: float = 0.05):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 8, norm=True, dropout=dropout), conv(8, 8, norm=True, dropout=dropout), nn.MaxPool2d(2),
            conv(8, 12, norm=True, dropout=dropout), conv(12, 12, norm=True, dropout=dropout), nn.MaxPool2d(2),
            conv(12, 12, padding=0, norm=True, dropout=dropout),  # 7 -> 5
            conv(12, 10, kernel=1, padding=0, norm=True),
        )
        self.head = nn.Conv2d(10, 10, kernel_size=5)  # 5x5 -> 1x1 logits


@register("superlight")
class SuperLightMNIST(ConvClassifier):
    """Global average pooling instead of a big classifier kernel; one max-pool, then dilated convs at 14x14.

    Dilation (2, 2, 3) grows the receptive field past 28 without a second pool, so the features that are
    averaged keep 14x14 resolution; a 1x1 conv widens them to 20 channels before pooling.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 8, norm=True), conv(8, 8, norm=True), nn.MaxPool2d(2),  # 28 -> 14
            conv(8, 10, norm=True),
            conv(10, 10, padding=2, dilation=2, norm=True),
            conv(10, 12, padding=2, dilation=2, norm=True),
            conv(12, 10, padding=3, dilation=3, norm=True),
            conv(10, 20, kernel=1, padding=0, norm=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(20, 10, kernel_size=1))
