"""Figures for runs, predictions, augmentation and robustness; each returns its Figure and can save a PNG."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .config import TrainConfig
from .data import AugmentConfig, augment_batch, denormalize
from .images import BlankImageError, preprocess
from .training import lr_schedule

SavePath = str | os.PathLike | None
CURVES = "curves.png"
CONFUSION = "confusion.png"


def _finish(fig: Figure, save: SavePath) -> Figure:
    fig.tight_layout()
    if save is not None:
        fig.savefig(save, dpi=120, bbox_inches="tight")
    return fig


def _image_grid(images: torch.Tensor, titles: list[str], columns: int, suptitle: str) -> Figure:
    """Normalised (N, 1, 28, 28) images as a grid of grey panels with small titles."""
    rows = max(1, math.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows), squeeze=False)
    pixels = denormalize(images.detach().float().cpu()).clamp(0, 1).numpy()
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(pixels[index, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_title(titles[index], fontsize=8)
    fig.suptitle(suptitle)
    return fig


def training_curves(history: list[dict], save: SavePath = None) -> Figure:
    """Train and test loss (left) and accuracy (right) per epoch, from a run's metrics["history"]."""
    frame = pd.DataFrame(history)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, name, unit in ((loss_ax, "loss", "Loss", ""), (acc_ax, "acc", "Accuracy", " (%)")):
        ax.plot(frame["epoch"], frame[f"train_{metric}"], marker="o", label="train")
        ax.plot(frame["epoch"], frame[f"test_{metric}"], marker="o", label="test")
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name + unit)
        ax.set_title(f"{name} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, save)


def lr_curve(config: TrainConfig, steps_per_epoch: int, save: SavePath = None) -> Figure:
    """Learning rate at every optimiser step of a run, with dotted epoch boundaries."""
    rates = lr_schedule(config, steps_per_epoch)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(range(len(rates)), rates)
    for epoch in range(1, config.epochs):
        ax.axvline(epoch * steps_per_epoch, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("Optimiser step")
    ax.set_ylabel("Learning rate")
    ax.set_title(f"One-cycle learning rate: {config.epochs} epochs x {steps_per_epoch} steps, max {config.lr:g}")
    return _finish(fig, save)


def confusion_counts(logits_or_preds: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """(classes, classes) int64 counts, rows = true label, columns = prediction."""
    preds = logits_or_preds.argmax(1) if logits_or_preds.dim() == 2 else logits_or_preds
    pairs = labels.detach().cpu().long() * classes + preds.detach().cpu().long()
    return torch.bincount(pairs, minlength=classes * classes).view(classes, classes)


def confusion_matrix(
    logits_or_preds: torch.Tensor, labels: torch.Tensor, normalize: bool = False, save: SavePath = None
) -> Figure:
    """Heatmap of the confusion matrix: counts, or % of each true class when `normalize`."""
    counts = confusion_counts(logits_or_preds, labels)
    if normalize:
        values = counts.double() / counts.sum(1, keepdim=True).clamp(min=1) * 100
        fmt, title = ".1f", "Confusion matrix (% of each true digit)"
    else:
        values, fmt, title = counts, "d", "Confusion matrix (counts)"
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(values.numpy(), annot=True, fmt=fmt, cmap="Blues", square=True, cbar=False, ax=ax,
                annot_kws={"fontsize": 8})
    ax.set_xlabel("Predicted digit")
    ax.set_ylabel("True digit")
    ax.set_title(title)
    return _finish(fig, save)


def misclassified_gallery(
    images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, n: int = 24, save: SavePath = None
) -> Figure:
    """The `n` most confidently wrong predictions, worst first: true digit, prediction, its probability."""
    probabilities = logits.detach().float().cpu().softmax(1)
    confidence, preds = probabilities.max(1)
    labels = labels.detach().cpu()
    wrong = (preds != labels).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)][:n]
    titles = [f"true {labels[i]} pred {preds[i]}\np={confidence[i]:.2f}" for i in worst.tolist()]
    fig = _image_grid(images.detach().cpu()[worst], titles, columns=8,
                         suptitle=f"Misclassified: {len(wrong)} of {len(labels)} (most confident first)")
    return _finish(fig, save)


def _augmented(image: torch.Tensor, n: int, config: AugmentConfig, seed: int) -> torch.Tensor:
    """`n` augmented copies of one normalised image, from a seeded generator."""
    batch = image.reshape(1, 1, *image.shape[-2:]).expand(n, -1, -1, -1).contiguous()
    generator = torch.Generator(device=batch.device).manual_seed(seed)
    return augment_batch(batch, generator, config)


def augmentation_gallery(
    image: torch.Tensor, n: int = 15, config: AugmentConfig = AugmentConfig(), seed: int = 0, save: SavePath = None
) -> Figure:
    """One normalised digit (first panel) and `n` random augmentations of it."""
    image = image.reshape(1, 1, *image.shape[-2:])
    panels = torch.cat([image, _augmented(image, n, config, seed)])
    fig = _image_grid(panels, ["original"] + [f"#{i + 1}" for i in range(n)], columns=8,
                         suptitle=f"Random augmentations (seed {seed})")
    return _finish(fig, save)


def augmentation_kinds(
    image: torch.Tensor, n: int = 6, config: AugmentConfig = AugmentConfig(), seed: int = 0, save: SavePath = None
) -> Figure:
    """One row per augmentation kind on its own (the other ranges zeroed), `n` random draws each."""
    identity = AugmentConfig(degrees=0.0, translate=0.0, scale=(1.0, 1.0), shear=0.0, erase_prob=0.0)
    kinds = {
        f"rotation ±{config.degrees:g}°": replace(identity, degrees=config.degrees),
        f"translation ±{config.translate:.0%}": replace(identity, translate=config.translate),
        f"scale {config.scale[0]:g}-{config.scale[1]:g}": replace(identity, scale=config.scale),
        f"shear ±{config.shear:g}°": replace(identity, shear=config.shear),
        "erasing": replace(identity, erase_prob=1.0, erase_area=config.erase_area),
    }
    fig, axes = plt.subplots(len(kinds), n, figsize=(1.3 * n, 1.5 * len(kinds)), squeeze=False)
    for row, (kind, kind_config) in zip(axes, kinds.items(), strict=True):
        pixels = denormalize(_augmented(image, n, kind_config, seed).cpu()).clamp(0, 1).numpy()
        for ax, panel in zip(row, pixels, strict=True):
            ax.imshow(panel[0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(kind, fontsize=8)
    fig.suptitle("Each augmentation on its own")
    return _finish(fig, save)


def class_balance(train_labels: torch.Tensor, test_labels: torch.Tensor, save: SavePath = None) -> Figure:
    """Images per digit in each split."""
    frame = pd.concat([
        pd.DataFrame({"digit": labels.cpu().numpy(), "split": name})
        for name, labels in (("train", train_labels), ("test", test_labels))
    ])
    fig, ax = plt.subplots(figsize=(9, 3.5))
    sns.countplot(frame, x="digit", hue="split", ax=ax)
    ax.set_xlabel("Digit")
    ax.set_ylabel("Images")
    ax.set_title("Class balance")
    return _finish(fig, save)


def per_class_accuracy(per_class: list[float], save: SavePath = None) -> Figure:
    """Bars of the accuracy (%) of each digit, e.g. training.evaluate(...)["per_class_accuracy"]."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bars = ax.bar(range(len(per_class)), per_class, color="tab:blue")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_ylim(max(0.0, min(per_class) - 2), 100.5)
    ax.set_xticks(range(len(per_class)))
    ax.set_xlabel("Digit")
    ax.set_ylabel("Accuracy (%)")
    ax.set_title("Per-class test accuracy")
    return _finish(fig, save)


def compare_runs(metrics_list: list[dict], labels: list[str] | None = None, save: SavePath = None) -> Figure:
    """Test accuracy per epoch of several runs (their metrics.json dicts) on one axis."""
    labels = labels or [metrics["run"] for metrics in metrics_list]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for metrics, label in zip(metrics_list, labels, strict=True):
        history = pd.DataFrame(metrics["history"])
        ax.plot(history["epoch"], history["test_acc"], marker="o", markersize=3, label=label)
    ax.set_xlabel("Epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("Test accuracy (%)")
    ax.set_title("Test accuracy per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, save)


def accuracy_vs_parameters(metrics_list: list[dict], save: SavePath = None) -> Figure:
    """Final test accuracy against parameter count, one labelled point per run."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for metrics in metrics_list:
        x, y = metrics["parameters"], metrics["summary"]["final_test_acc"]
        ax.scatter(x, y)
        ax.annotate(metrics["model"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("Parameters")
    ax.set_ylabel("Final test accuracy (%)")
    ax.set_title("Accuracy vs parameters")
    ax.grid(alpha=0.3)
    return _finish(fig, save)


Tables = pd.DataFrame | dict[str, pd.DataFrame]


def _accuracy_line(tables: Tables, x: str, xlabel: str, title: str, save: SavePath) -> Figure:
    """One accuracy line per table; a dict {label: table} compares several models in one plot."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, table in (tables.items() if isinstance(tables, dict) else [(None, tables)]):
        ax.plot(table[x], table["accuracy"], marker="o", label=label)
    if isinstance(tables, dict):
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _finish(fig, save)


def noise_curve(table: Tables, save: SavePath = None) -> Figure:
    """Accuracy against noise std, from robustness.noise_robustness (or {label: table} to compare)."""
    return _accuracy_line(table, "std", "Gaussian noise std (on [0, 1] pixels)", "Accuracy under pixel noise", save)


def rotation_curve(table: Tables, save: SavePath = None) -> Figure:
    """Accuracy against rotation angle, from robustness.rotation_robustness (or {label: table} to compare)."""
    return _accuracy_line(table, "degrees", "Rotation (degrees, positive = clockwise)", "Accuracy under rotation", save)


def translation_heatmap(table: pd.DataFrame, save: SavePath = None) -> Figure:
    """Heatmap of accuracy over (dx, dy) shifts, from robustness.translation_robustness."""
    grid = table.pivot(index="dy", columns="dx", values="accuracy")
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", square=True, ax=ax, annot_kws={"fontsize": 8},
                cbar_kws={"label": "Test accuracy (%)"})
    ax.set_xlabel("Shift right (pixels)")
    ax.set_ylabel("Shift down (pixels)")
    ax.set_title("Accuracy under translation")
    return _finish(fig, save)


def stability_curve(table: pd.DataFrame, save: SavePath = None) -> Figure:
    """Share of unchanged predictions and accuracy against noise std, from robustness.prediction_stability."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(table["std"], table["unchanged"], marker="o", label="predictions unchanged")
    ax.plot(table["std"], table["accuracy"], marker="s", label="accuracy under noise")
    ax.set_xlabel("Gaussian noise std (on [0, 1] pixels)")
    ax.set_ylabel("%")
    ax.set_title("Prediction stability under small noise")
    ax.grid(alpha=0.3)
    ax.legend()
    return _finish(fig, save)


def save_run_figures(
    run_dir: Path, metrics: dict, test_logits: torch.Tensor, test_labels: torch.Tensor
) -> list[Path]:
    """Write curves.png and confusion.png into a run directory; the figures are closed afterwards."""
    run_dir = Path(run_dir)
    paths = [run_dir / CURVES, run_dir / CONFUSION]
    figures = [
        training_curves(metrics["history"], save=paths[0]),
        confusion_matrix(test_logits, test_labels, save=paths[1]),
    ]
    for fig in figures:
        plt.close(fig)
    return paths


def noise_tradeoff(study: pd.DataFrame, save: SavePath = None) -> Figure:
    """Accuracy against the evaluation noise std, one line per training noise (std, share), mean and seed sd,
    from studies.study_table("noise")."""
    columns = {"final acc (%)": 0.0, **{c: float(c.split()[3]) for c in study.columns if c.startswith("acc at noise")}}
    long = study.melt(id_vars=["noise_std", "noise_prob", "seed"], value_vars=list(columns), var_name="eval",
                      value_name="accuracy")
    long["evaluation noise std"] = long["eval"].map(columns)
    long["training noise"] = [f"U(0, {std:g}) on {prob:.0%} of images" if std else "none" for std, prob in
                              zip(long["noise_std"], long["noise_prob"], strict=True)]
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(12, 4))
    for ax in (full, zoom):
        sns.lineplot(long, x="evaluation noise std", y="accuracy", hue="training noise", marker="o",
                     errorbar="sd", ax=ax)
        ax.set_ylabel("Validation accuracy (%)")
        ax.grid(alpha=0.3)
    full.set_title("Accuracy under pixel noise (mean, band: sd over seeds)")
    zoom.set_ylim(98.5, 99.7)
    zoom.axhline(99.4, color="grey", linestyle="--", linewidth=1)
    zoom.set_title("The same, zoomed to 98.5-99.7% (dashed: 99.4%)")
    return _finish(fig, save)


def photo_gallery(photos: list, readings: pd.DataFrame, per_condition: int = 4, save: SavePath = None) -> Figure:
    """For `per_condition` pictures of each condition, misses first: the picture, what preprocess made of it, and
    the model's answer (from photos.read_photos; red when wrong)."""
    conditions = list(dict.fromkeys(readings["condition"]))
    fig, axes = plt.subplots(len(conditions), 2 * per_condition, figsize=(2.6 * per_condition, 1.45 * len(conditions)),
                             squeeze=False)
    for row, condition in enumerate(conditions):
        rows = readings[readings["condition"] == condition]
        chosen = list(rows.index[~rows["correct"]]) + list(rows.index[rows["correct"]])
        chosen = chosen[:per_condition]
        for column, index in enumerate(chosen):
            picture, seen = axes[row, 2 * column], axes[row, 2 * column + 1]
            picture.imshow(photos[index].image.convert("RGB"))
            try:
                seen.imshow(denormalize(preprocess(photos[index].image))[0], cmap="gray", vmin=0, vmax=1)
            except BlankImageError:
                pass
            result = readings.loc[index]
            answer = "blank" if pd.isna(result["predicted"]) else \
                f"{int(result['predicted'])} ({result['probability']:.2f})"
            seen.set_title(f"{result['label']} -> {answer}", fontsize=8, color="black" if result["correct"] else "red")
        axes[row, 0].set_ylabel(condition, rotation=0, ha="right", va="center", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.suptitle("Pictures, what preprocess makes of them, and label -> answer (probability)")
    return _finish(fig, save)
