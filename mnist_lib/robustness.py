"""Test accuracy under pixel noise, rotation and translation, and prediction stability; seeded tables.

Perturbations act on [0, 1] pixels (before normalisation), like the augmentation in `data`. A zero
perturbation returns the images untouched (a grid_sample identity is not bit-exact), so accuracy at zero
is exactly `training.evaluate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .data import TensorSplit, add_pixel_noise, denormalize, normalize
from .training import evaluate, logits

NOISE_STDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
ROTATIONS = tuple(range(-45, 46, 5))
SHIFTS = tuple(range(-6, 7, 3))
STABILITY_STDS = (0.01, 0.02, 0.05, 0.1)


def add_noise(images: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """Gaussian noise of `std` on the [0, 1] pixels of a normalised batch, clamped back to [0, 1]."""
    if std == 0:
        return images
    generator = torch.Generator(device=images.device).manual_seed(seed)
    return normalize(add_pixel_noise(denormalize(images), std, generator))


def _warp(images: torch.Tensor, matrix: list[list[float]]) -> torch.Tensor:
    """Apply one 2x3 output->input matrix (affine_grid coordinates) to every image; outside is background."""
    theta = torch.tensor(matrix, device=images.device).expand(len(images), 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return normalize(F.grid_sample(denormalize(images), grid, align_corners=False, padding_mode="zeros"))


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every image by `degrees` about its centre (positive turns clockwise on screen)."""
    if degrees == 0:
        return images
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    return _warp(images, [[cos, sin, 0.0], [-sin, cos, 0.0]])


def translate(images: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Shift every image `dx` pixels right and `dy` pixels down."""
    if dx == dy == 0:
        return images
    height, width = images.shape[-2:]
    return _warp(images, [[1.0, 0.0, -2 * dx / width], [0.0, 1.0, -2 * dy / height]])


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return evaluate(model, TensorSplit(images, labels))["accuracy"]


def noise_robustness(
    model: nn.Module, split: TensorSplit, stds: Iterable[float] = NOISE_STDS, seed: int = 0
) -> pd.DataFrame:
    """Accuracy (%) per Gaussian noise std on [0, 1] pixels; the same seeded noise pattern at every std."""
    return pd.DataFrame([
        {"std": std, "accuracy": _accuracy(model, add_noise(split.images, std, seed), split.labels)} for std in stds
    ])


def rotation_robustness(model: nn.Module, split: TensorSplit, degrees: Iterable[float] = ROTATIONS) -> pd.DataFrame:
    """Accuracy (%) per rotation angle in degrees."""
    return pd.DataFrame([
        {"degrees": angle, "accuracy": _accuracy(model, rotate(split.images, angle), split.labels)} for angle in degrees
    ])


def translation_robustness(model: nn.Module, split: TensorSplit, shifts: Iterable[int] = SHIFTS) -> pd.DataFrame:
    """Accuracy (%) for every (dx, dy) pair of pixel shifts; pivot on dx/dy for a heatmap."""
    shifts = list(shifts)
    return pd.DataFrame([
        {"dx": dx, "dy": dy, "accuracy": _accuracy(model, translate(split.images, dx, dy), split.labels)}
        for dy in shifts
        for dx in shifts
    ])


def prediction_stability(
    model: nn.Module, split: TensorSplit, stds: Iterable[float] = STABILITY_STDS, seed: int = 0
) -> pd.DataFrame:
    """Share (%) of predictions unchanged under seeded pixel noise, and the accuracy under that noise."""
    clean = logits(model, split).argmax(1)
    rows = []
    for std in stds:
        noisy = logits(model, TensorSplit(add_noise(split.images, std, seed), split.labels)).argmax(1)
        rows.append({
            "std": std,
            "unchanged": (noisy == clean).float().mean().item() * 100,
            "accuracy": (noisy == split.labels).float().mean().item() * 100,
        })
    return pd.DataFrame(rows)


KINDS = ("noise", "rotation", "translation", "stability")


def robustness_report(model: nn.Module, split: TensorSplit, seed: int = 0,
                      kinds: Iterable[str] = KINDS) -> dict[str, pd.DataFrame]:
    """The tables of `kinds` (default: all four) with their default grids, keyed by kind."""
    tables = {
        "noise": lambda: noise_robustness(model, split, seed=seed),
        "rotation": lambda: rotation_robustness(model, split),
        "translation": lambda: translation_robustness(model, split),
        "stability": lambda: prediction_stability(model, split, seed=seed),
    }
    return {kind: tables[kind]() for kind in kinds}


def compare(reports: dict[str, dict[str, pd.DataFrame]], kind: str) -> pd.DataFrame:
    """One table of `kind` ("noise", "rotation", "translation", "stability") with a column per labelled report
    that has it."""
    having = {label: report[kind] for label, report in reports.items() if kind in report}
    tables = [table.set_index([c for c in table.columns if c not in ("accuracy", "unchanged")])
              for table in having.values()]
    return pd.concat(tables, axis=1, keys=list(having))
