"""Figures for runs, predictions, augmentation and robustness; each returns its Figure and can save a PNG."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from .config import TrainConfig
from .data import AugmentConfig, augment_batch, denormalize
from .images import BlankImageError, preprocess
from .records import FRONTIER_BUDGET, SERIES_MODELS, TARGETS, target_accuracy
from .runs import CHECKPOINT, METRICS, by_size, configuration, grouped, load_model, run_splits
from .studies import PARAMETER_BUDGET
from .training import logits, lr_schedule

SavePath = str | os.PathLike | None
CURVES = "curves.png"
CONFUSION = "confusion.png"
GOAL = TARGETS["superlight"]["last3_min"]  # the project's headline accuracy, 99.4%


def _finish(fig: Figure, save: SavePath) -> Figure:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    if save is not None:
        fig.savefig(save, dpi=120, bbox_inches="tight")
    return fig


def _image_grid(images: torch.Tensor, titles: list[str], columns: int, suptitle: str) -> Figure:
    """Normalised (N, 1, 28, 28) images as a grid of grey panels with small titles."""
    rows = max(1, math.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows), squeeze=False,
                             layout="constrained")
    pixels = denormalize(images.detach().float().cpu()).clamp(0, 1).numpy()
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(pixels[index, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_title(titles[index], fontsize=8)
    fig.suptitle(suptitle)
    return fig


def _zoom(ax, late_values: list[float], target: float | None = None) -> None:
    """Accuracy axis from just below the lowest late-training value (and the target) up to 100%."""
    low = min(late_values) if target is None else min(*late_values, target)
    ax.set_ylim(low - max(0.2, (100 - low) * 0.15), 100.05)


def _split(runs: list[dict]) -> str:
    """The split the runs were evaluated on: "test", "validation" or both joined by "/"."""
    return "/".join(sorted({metrics.get("evaluated_on") or "test" for metrics in runs}))


def _target_line(ax, target: float, label: str) -> None:
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=label)


def training_curves(
    history: list[dict], save: SavePath = None, target: float | None = None, title: str | None = None,
    split: str = "test"
) -> Figure:
    """Train and `split` (test or validation) loss (left, log scale) and accuracy (right, zoomed on the second half
    of training, with a dashed `target` line when given) per epoch, from a run's metrics["history"]."""
    frame = pd.DataFrame(history)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    panels = ((loss_ax, "loss", "Loss (log scale)", "Loss per epoch"),
              (acc_ax, "acc", "Accuracy (%)", "Accuracy per epoch (zoomed on the second half)"))
    for ax, metric, ylabel, ax_title in panels:
        ax.plot(frame["epoch"], frame[f"train_{metric}"], marker="o", label="train")
        ax.plot(frame["epoch"], frame[f"test_{metric}"], marker="o", label=split)
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.set_title(ax_title)
        ax.grid(alpha=0.3)
    loss_ax.set_yscale("log")
    late = frame.iloc[len(frame) // 2:]
    _zoom(acc_ax, [*late["train_acc"], *late["test_acc"]], target)
    if target is not None:
        _target_line(acc_ax, target, f"target {target:g}%")
    for ax in (loss_ax, acc_ax):
        ax.legend()
    if title:
        fig.suptitle(title)
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


def _of_model(title: str, model_name: str | None) -> str:
    return f"{title}: {model_name}" if model_name else title


def confusion_matrix(
    logits_or_preds: torch.Tensor, labels: torch.Tensor, normalize: bool = False, save: SavePath = None,
    model_name: str | None = None
) -> Figure:
    """Heatmap of the confusion matrix: counts, or % of each true class when `normalize`; `model_name` goes into
    the title."""
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
    ax.set_title(_of_model(title, model_name))
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
    fig, axes = plt.subplots(len(kinds), n, figsize=(1.3 * n, 1.5 * len(kinds)), squeeze=False,
                             layout="constrained")
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


def _colours(runs: list[dict]) -> dict[str, str]:
    """One colour per model, fixed by its place in records.SERIES_MODELS."""
    extra = sorted({metrics["model"] for metrics in runs} - set(SERIES_MODELS))
    return {model: f"C{index}" for index, model in enumerate([*SERIES_MODELS, *extra])}


def _configuration(model: str, augment: bool) -> str:
    return f"{model}, {'augmentation' if augment else 'no augmentation'}"


def _seeds(counts: list[int]) -> str:
    """'1 seed', '3 seeds' or '1-3 seeds' for these numbers of seeds."""
    low, high = min(counts), max(counts)
    return f"{low} seed" if high == 1 else f"{low} seeds" if low == high else f"{low}-{high} seeds"


def series_curves(runs: list[dict], save: SavePath = None) -> Figure:
    """Accuracy per epoch of each configuration of a series (e.g. records.series_runs()): mean over seeds, band
    min-max over seeds, one colour per model, solid with augmentation and dashed without."""
    groups, colours, split = grouped(runs, configuration), _colours(runs), _split(runs)
    fig, ax = plt.subplots(figsize=(11, 5))
    late = []
    for (model, augment), members in groups.items():
        seeds = pd.concat([pd.DataFrame(m["history"]).set_index("epoch")["test_acc"] for m in members], axis=1)
        mean, low, high = seeds.mean(axis=1), seeds.min(axis=1), seeds.max(axis=1)
        ax.plot(mean.index, mean, color=colours[model], linestyle="-" if augment else "--", marker="o",
                markersize=3, label=f"{_configuration(model, augment)} ({_seeds([len(members)])})")
        ax.fill_between(mean.index, low, high, color=colours[model], alpha=0.2, linewidth=0)
        late += list(low.iloc[-3:])  # the y-axis fits the target's window, the last 3 epochs
    _zoom(ax, late, GOAL)
    _target_line(ax, GOAL, f"{GOAL:g}% accuracy")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.3, label="band: min-max over seeds"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_xlabel("Epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{split.capitalize()} accuracy (%)")
    ax.set_title(f"{split.capitalize()} accuracy per epoch, mean over seeds (y-axis fits the last 3 epochs)")
    ax.grid(alpha=0.3)
    return _finish(fig, save)


def accuracy_vs_parameters(runs: list[dict], save: SavePath = None) -> Figure:
    """One point per configuration (model x augmentation) of a series: its parameter count against the mean
    final-epoch accuracy over seeds, error bars the std over seeds; filled with augmentation, hollow without."""
    groups, colours, split = grouped(runs, configuration), _colours(runs), _split(runs)
    fig, ax = plt.subplots(figsize=(10, 5))
    for (model, augment), members in groups.items():
        accuracies = pd.Series([m["summary"]["final_test_acc"] for m in members])
        colour = colours[model]
        ax.errorbar(members[0]["parameters"], accuracies.mean(),
                    yerr=accuracies.std() if len(members) > 1 else None, fmt="o", markersize=8, capsize=4,
                    color=colour, markerfacecolor=colour if augment else "none",
                    label=_configuration(model, augment))
    _target_line(ax, GOAL, f"{GOAL:g}% accuracy")
    ax.axvline(PARAMETER_BUDGET, color="grey", linestyle=":", linewidth=1, label=f"{PARAMETER_BUDGET:,} parameters")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("Parameters")
    ax.set_ylabel(f"Final-epoch {split} accuracy (%), mean ± std over seeds")
    ax.set_title(f"Accuracy vs parameters ({_seeds([len(m) for m in groups.values()])} per point)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _finish(fig, save)


def frontier(runs: list[dict], others: list[dict] = (), budget: int = FRONTIER_BUDGET, save: SavePath = None) -> Figure:
    """Accuracy against parameters (log axis) of a model family (e.g. records.frontier_runs()): mean final-epoch
    accuracy per model with ± std error bars over seeds and each seed's minimum over the last 3 epochs as a dot;
    SuperLight starred; `others` (e.g. the series' Light and Lightest) as labelled points; the 99.4% line and
    the parameter `budget`."""
    split = _split(runs)
    fig, ax = plt.subplots(figsize=(10, 5))
    points = []
    for members in by_size(runs):
        model = members[0]["model"]
        final = pd.Series([m["summary"]["final_test_acc"] for m in members])
        points.append((members[0]["parameters"], final.mean(), final.std() if len(final) > 1 else 0.0))
        ax.scatter([members[0]["parameters"]] * len(members), [m["summary"]["last3_min"] for m in members],
                   color="C7", s=12, zorder=3, label="a seed's minimum of the last 3 epochs" if not ax.collections
                   else None)
        ax.annotate(f"{model} ({len(members)})", (members[0]["parameters"], final.mean()), fontsize=7,
                    xytext=(4, 6), textcoords="offset points")
    sizes, means, stds = zip(*points, strict=True)
    ax.errorbar(sizes, means, yerr=stds, fmt="o-", capsize=4, color="C0",
                label="final epoch, mean ± std over seeds (seeds in brackets)")
    superlight = [m for m in runs if m["model"] == "superlight"]
    if superlight:
        ax.scatter([superlight[0]["parameters"]], [pd.Series([m["summary"]["final_test_acc"] for m in superlight])
                   .mean()], marker="*", s=250, facecolors="none", edgecolors="C3", linewidths=1.5, zorder=4,
                   label="SuperLight (the committed series)")  # hollow: its error bar and seeds show through
    for colour, (model, members) in zip(("C2", "C1", "C4", "C5"), grouped(list(others), configuration).items(),
                                        strict=False):
        final = pd.Series([m["summary"]["final_test_acc"] for m in members])
        ax.errorbar(members[0]["parameters"], final.mean(), yerr=final.std() if len(final) > 1 else None, fmt="s",
                    capsize=4, color=colour, label=f"{_configuration(*model)} ({_seeds([len(members)])})")
    _target_line(ax, GOAL, f"{GOAL:g}% accuracy")
    ax.axvline(budget, color="grey", linestyle=":", linewidth=1, label=f"{budget:,} parameters")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.xaxis.set_minor_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("Parameters (log scale)")
    ax.set_ylabel(f"{split.capitalize()} accuracy (%)")
    ax.set_title(f"Accuracy vs parameters: the frontier ({split} set)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
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


def translation_heatmap(table: pd.DataFrame, save: SavePath = None, model_name: str | None = None) -> Figure:
    """Heatmap of accuracy over (dx, dy) shifts, from robustness.translation_robustness; `model_name` goes into the
    title."""
    grid = table.pivot(index="dy", columns="dx", values="accuracy")
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", square=True, ax=ax, annot_kws={"fontsize": 8},
                cbar_kws={"label": "Test accuracy (%)"})
    ax.set_xlabel("Shift right (pixels)")
    ax.set_ylabel("Shift down (pixels)")
    ax.set_title(_of_model("Accuracy under translation", model_name))
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
    """Write curves.png (titled with the run, with the model's target line) and confusion.png (titled with the
    model) into a run directory; the figures are closed afterwards."""
    run_dir = Path(run_dir)
    paths = [run_dir / CURVES, run_dir / CONFUSION]
    model = metrics["model"]
    target = target_accuracy(model) if model in TARGETS else None
    figures = [
        training_curves(metrics["history"], save=paths[0], target=target, title=metrics["run"],
                        split=_split([metrics])),
        confusion_matrix(test_logits, test_labels, save=paths[1], model_name=model),
    ]
    for fig in figures:
        plt.close(fig)
    return paths


def save_figures_of(run_dir: Path, data_dir: str | os.PathLike | None = None, download: bool = True) -> list[Path]:
    """save_run_figures for a finished run folder that lacks them: its checkpoint evaluated again on its own
    evaluation split. Figures already there are kept."""
    paths = [Path(run_dir) / CURVES, Path(run_dir) / CONFUSION]
    if all(path.exists() for path in paths):
        return paths
    metrics = json.loads((Path(run_dir) / METRICS).read_text())
    _, held_out = run_splits(TrainConfig.from_dict(metrics["config"]), data_dir, "cpu", download)
    model = load_model(Path(run_dir) / CHECKPOINT)
    return save_run_figures(run_dir, metrics, logits(model, held_out), held_out.labels)


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
