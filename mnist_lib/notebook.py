"""What keeps the notebooks thin: their papermill parameters checked against TrainConfig, the Results tables, and
this run set against the committed series (so a run with other parameters shows its own numbers as its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields

import pandas as pd
from torch import nn

from . import records
from .anatomy import layer_table
from .config import TrainConfig
from .errors import ConfigError
from .models import count_parameters
from .photos import accuracy_by_condition
from .records import (
    SERIES_MODELS,
    holds_noise_aims,
    meets_target,
    series_config,
    summary_values,
    target_accuracy,
    target_text,
)
from .runs import configuration, settings_of
from .studies import mean_std, versus

PATH_PARAMETERS = ("data_dir", "out_dir")  # where MNIST is read and runs are written; not part of a run's config
NOT_PARAMETERS = ("model", "model_args")  # fixed by each notebook (model_args may still be passed with -y)


def parameter_defaults() -> dict:
    """What an iteration notebook's parameters cell declares: TrainConfig's settings with their defaults, then
    the two paths. tests/test_notebooks.py holds every notebook's cell to this."""
    defaults = {spec.name: spec.default for spec in fields(TrainConfig)
                if spec.name not in NOT_PARAMETERS and spec.default is not MISSING}
    return {**defaults, **dict.fromkeys(PATH_PARAMETERS)}


def check_path_parameter(name: str, value) -> None:
    """ConfigError unless `value` is a path string or None."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name}={value!r} is invalid: {name} must be a path string or None")


def configure(model: str, namespace: Mapping) -> TrainConfig:
    """The TrainConfig of a notebook run: the settings found by name in `namespace` (the notebook's globals,
    after papermill injected its parameters), validated — papermill itself checks no types.

    Raises ConfigError naming the first bad parameter, e.g. `-p epochs abc` or `-p epochs -1`.
    """
    for name in PATH_PARAMETERS:
        check_path_parameter(name, namespace.get(name))
    settings = {spec.name: namespace[spec.name] for spec in fields(TrainConfig)
                if spec.name != "model" and spec.name in namespace}
    return TrainConfig(model=model, **settings).validate()


def run_summary(metrics: dict) -> pd.DataFrame:
    """The Results table of one run, straight from its recorded history."""
    s = metrics["summary"]
    rows = {
        "run": metrics["run"],
        "parameters": f"{metrics['parameters']:,}",
        "augmentation": metrics["config"]["augment"],
        "epochs": s["epochs_run"],
        "final-epoch test accuracy": f"{s['final_test_acc']:.2f}%",
        "last-3-epochs test accuracy": f"{s['last3_min']:.2f}% - {s['last3_max']:.2f}%",
        "best test accuracy [epoch]": f"{s['best_test_acc']:.2f}% [epoch {s['best_epoch']}]",
        "final-epoch train accuracy (measured during the epoch)": f"{s['final_train_acc']:.2f}%",
        "train - test gap, final epoch (pp)": f"{s['final_train_acc'] - s['final_test_acc']:+.2f}",
        "wall time": f"{metrics['wall_seconds']:.0f} s ({metrics['wall_seconds'] / s['epochs_run']:.1f} s/epoch)",
        "device": metrics["device"] + _device_kind(metrics),  # wall time depends on it
    }
    return pd.DataFrame({"value": rows})


def _device_kind(metrics: dict) -> str:
    """' (AVX2)' for a CPU run that recorded its kind, ' (NVIDIA H100 80GB HBM3)' for a GPU run that recorded its
    name, else ''."""
    kind = metrics.get("cpu_capability") if metrics["device"] == "cpu" else metrics.get("gpu")
    return f" ({kind})" if kind else ""


def _same_configuration(metrics: dict, series: list[dict]) -> list[dict]:
    return [m for m in series if configuration(m) == configuration(metrics)]


def against_series(metrics: dict, series: list[dict]) -> pd.DataFrame:
    """This run next to the committed series' runs of its model and augmentation (all seeds): final-epoch test
    accuracy, minimum over the last 3 epochs, whether the target is met."""
    same = _same_configuration(metrics, series)
    s = metrics["summary"]
    rows = {f"this run ({metrics['run']})": {
        "seeds": str(metrics["config"]["seed"]), "final-epoch test acc (%)": f"{s['final_test_acc']:.2f}",
        "min of last 3 (%)": f"{s['last3_min']:.2f}", "meets the target": "yes" if meets_target(metrics) else "no"}}
    if same:
        rows["committed series"] = {
            "seeds": ", ".join(str(m["config"]["seed"]) for m in same),
            "final-epoch test acc (%)": mean_std(pd.Series([m["summary"]["final_test_acc"] for m in same])),
            "min of last 3 (%)": f"worst seed {min(m['summary']['last3_min'] for m in same):.2f}",
            "meets the target": f"{sum(meets_target(m) for m in same)} of {len(same)} seeds"}
    return pd.DataFrame(rows).T


def difference_from_series(metrics: dict, series: list[dict]) -> str:
    """One sentence: how far this run's final accuracy is from the series' mean, called a difference only beyond
    the seeds' spread (studies.versus, the rule of every comparison here) and "within noise" otherwise."""
    same = _same_configuration(metrics, series)
    twin = [m for m in same if m["config"]["seed"] == metrics["config"]["seed"]]
    if twin and not _unlike_the_series(metrics["config"]):  # this seed is in the series: a reproduction check
        gap = metrics["summary"]["final_test_acc"] - twin[0]["summary"]["final_test_acc"]
        finals = summary_values(same)
        return (f"The committed series' run of this seed (`{twin[0]['run']}`) ended at "
                f"{twin[0]['summary']['final_test_acc']:.2f}%: this run "
                + ("reproduces it exactly" if gap == 0 else f"differs from it by {gap:+.2f} points")
                + f". The series over its {len(same)} seed{'s' if len(same) > 1 else ''}: {mean_std(finals)}%.")
    if len(same) < 2:
        return "The committed series has fewer than 2 seeds of this configuration: no seed spread to compare with."
    finals = summary_values(same)
    verdict = versus(pd.Series([metrics["summary"]["final_test_acc"]]), finals)
    return (f"This run's final-epoch accuracy against the committed series' mean ({finals.mean():.2f}% over "
            f"{len(same)} seeds, std {finals.std(ddof=1):.2f}): {verdict}.")
















def _seed_list(members: list[dict]) -> str:
    return ", ".join(str(m["config"]["seed"]) for m in members)


def _unlike_the_series(config: dict) -> str:
    """The settings in which a recorded config differs from the series' standard recipe, e.g. 'epochs=1'."""
    standard = settings_of(series_config(config["model"], config["augment"], config["seed"]).to_dict())
    return ", ".join(f"{key}={value!r}" for key, value in settings_of(config).items() if standard[key] != value)


def _this_run(metrics: dict) -> list[str]:
    s, config, split = metrics["summary"], metrics["config"], metrics.get("evaluated_on", "test")
    unlike = _unlike_the_series(config)
    goal = target_accuracy("superlight")
    # The targets are for 15 epochs of the standard recipe on the test set; other runs are not judged by them.
    target = "n/a, not the series' recipe" if unlike else "met" if meets_target(metrics) else "missed"
    first = metrics["history"][0]
    last = metrics["history"][-1]
    return [
        f"**This run** (`{metrics['run']}`: seed {config['seed']}, {'with' if config['augment'] else 'without'} "
        f"augmentation, {metrics['parameters']:,} parameters): final-epoch {split} accuracy "
        f"**{s['final_test_acc']:.2f}%**, last 3 epochs {s['last3_min']:.2f}% - {s['last3_max']:.2f}%, best "
        f"{s['best_test_acc']:.2f}% at epoch {s['best_epoch']} of {s['epochs_run']}. This notebook's target "
        f"({target_text(metrics['model'])}): **{target}**"
        + ("" if metrics["model"] == "superlight" or unlike else
           f"; the series goal ({goal}% in each of the last 3 epochs): "
           f"**{'met' if s['last3_min'] >= goal else 'missed'}**")
        + f" ({s['last3_min'] - goal:+.2f} points from {goal}% at the lowest of the last 3)."
        + (f" *Not the series' recipe* ({unlike}): set against the series below, it is not like for like."
           if unlike else ""),
        f"**Train vs {split}, final epoch:** train accuracy {s['final_train_acc']:.2f}% (measured during the epoch "
        f"in training mode, on {'augmented' if config['augment'] else 'unaugmented'} images) against "
        f"{s['final_test_acc']:.2f}% ({s['final_train_acc'] - s['final_test_acc']:+.2f} points); train loss "
        f"{last['train_loss']:.4f} against {split} loss {last['test_loss']:.4f}. After the first epoch: "
        f"{first['test_acc']:.2f}% {split} accuracy.",
    ]


def _augmentation_effect(model: str, series: list[dict]) -> list[str]:
    with_aug = [m for m in series if configuration(m) == (model, True)]
    without = [m for m in series if configuration(m) == (model, False)]
    if not with_aug or not without:
        return []

    def gap(members: list[dict]) -> float:
        return (summary_values(members, "final_train_acc") - summary_values(members)).mean()

    return [
        f"**Augmentation, in the committed series of {model}** (with: seeds {_seed_list(with_aug)}; without: seeds "
        f"{_seed_list(without)}): final-epoch test accuracy {mean_std(summary_values(with_aug))}% with against "
        f"{mean_std(summary_values(without))}% without, "
        f"{versus(summary_values(with_aug), summary_values(without))}; mean train - test "
        f"gap at the final epoch {gap(with_aug):+.2f} points with, {gap(without):+.2f} without; seeds meeting the "
        f"target {sum(map(meets_target, with_aug))} of {len(with_aug)} with, {sum(map(meets_target, without))} of "
        f"{len(without)} without."]


def _against_previous(model: str, series: list[dict]) -> list[str]:
    index = SERIES_MODELS.index(model) if model in SERIES_MODELS else 0
    if index == 0:
        return []
    previous = SERIES_MODELS[index - 1]
    mine = [m for m in series if configuration(m) == (model, True)]
    theirs = [m for m in series if configuration(m) == (previous, True)]
    if not mine or not theirs:
        return []
    fewer = theirs[0]["parameters"] - mine[0]["parameters"]
    return [
        f"**Against {previous}, in the committed series with augmentation:** {mine[0]['parameters']:,} parameters "
        f"against {theirs[0]['parameters']:,} ({abs(fewer):,} {'fewer' if fewer >= 0 else 'more'}, "
        f"{abs(fewer) / theirs[0]['parameters']:.0%}); final-epoch "
        f"test accuracy {mean_std(summary_values(mine))}% (seeds {_seed_list(mine)}) against "
        f"{mean_std(summary_values(theirs))}% (seeds {_seed_list(theirs)}): "
        f"{versus(summary_values(mine), summary_values(theirs))}; worst seed's minimum over the "
        f"last 3 epochs {_worst_seed(mine)} against {_worst_seed(theirs)}; after the first epoch "
        f"{mean_std(_first_epoch(mine))}% against {mean_std(_first_epoch(theirs))}%, "
        f"{versus(_first_epoch(mine), _first_epoch(theirs))}."]


def _worst_seed(members: list[dict]) -> str:
    """The lowest minimum over the last 3 epochs among `members`, with its seed, e.g. '99.34% (seed 2 of 5)'."""
    worst = min(members, key=lambda m: m["summary"]["last3_min"])
    return f"{worst['summary']['last3_min']:.2f}% (seed {worst['config']['seed']} of {len(members)})"


def _first_epoch(members: list[dict]) -> pd.Series:
    return pd.Series([m["history"][0]["test_acc"] for m in members], dtype=float)


def _largest_layer(model: nn.Module) -> list[str]:
    layers = layer_table(model)
    layers = layers[layers["layer"] != "total"]
    largest = layers[layers["parameters"] == layers["parameters"].max()]
    size, total = int(largest["parameters"].iloc[0]), count_parameters(model)

    def described(name: str) -> str:
        module = model.get_submodule(name)
        if not isinstance(module, nn.Conv2d):
            return f"`{name}` ({type(module).__name__})"
        dilation = f", dilation {module.dilation[0]}" if module.dilation[0] > 1 else ""
        return (f"`{name}` (Conv2d {module.in_channels} -> {module.out_channels} channels, "
                f"{module.kernel_size[0]}x{module.kernel_size[1]}{dilation})")

    names = " and ".join(described(name) for name in largest["layer"])
    each = " each" if len(largest) > 1 else ""
    return [f"**Where the parameters go:** the largest layer{'s' if len(largest) > 1 else ''}, {names}, "
            f"hold{'' if len(largest) > 1 else 's'} {size:,}{each} of the {total:,} parameters ({size / total:.0%}"
            f"{each})."]


def analysis_facts(metrics: dict, series: list[dict], model: nn.Module | None = None) -> str:
    """The numbers an iteration notebook's Analysis rests on, as markdown bullets rendered from this run's record
    and the committed series: this run against its target, train against test, this run against the series'
    seeds, augmentation and the previous iteration in the series, and (given the model) its largest layer.
    Differences are judged against the seeds' spread (studies.versus)."""
    name = metrics["model"]
    bullets = [*_this_run(metrics), difference_from_series(metrics, series),
               *_augmentation_effect(name, series), *_against_previous(name, series)]
    if model is not None:
        bullets += _largest_layer(model)
    return "\n".join(f"- {bullet}" for bullet in bullets)


def robustness_facts(reports: dict[str, dict[str, pd.DataFrame]], readings: pd.DataFrame) -> str:
    """Notebook 03's robustness numbers as markdown bullets: each report's accuracy under pixel noise (against the
    noise aims) and rotation, the committed noise recipe's verdict, and the photo set read by this run's model."""
    bullets = []
    for label, report in reports.items():
        if "noise" not in report and "rotation" not in report:
            continue
        parts = []
        if "noise" in report:
            noise = report["noise"].set_index("std")["accuracy"]
            shown = [std for std in (0.1, 0.2, 0.3) if std in noise.index]
            parts.append("pixel noise " + ", ".join(f"{noise[std]:.2f}% at std {std}" for std in shown)
                         + f" (noise aims {'met' if holds_noise_aims(noise.to_dict()) else 'missed'})")
        if "rotation" in report:
            rotation = report["rotation"].set_index("degrees")["accuracy"]
            parts.append("rotation " + ", ".join(f"{rotation[angle]:.2f}% at {angle:g} degrees"
                                                 for angle in (20, 45) if angle in rotation.index))
        bullets.append(f"**{label}:** " + "; ".join(parts) + ".")
    bullets.append(f"**Noise recipe, committed test-set runs:** {records.noise_verdict()}")
    by_condition = accuracy_by_condition(readings).set_index("condition")
    conditions = by_condition.drop(index="all")
    worst = conditions["accuracy (%)"].idxmin()
    weakest = (f"every condition {conditions['accuracy (%)'].min():.1f}%" if conditions["accuracy (%)"].nunique() == 1
               else f"the weakest condition, {worst}, {conditions.loc[worst, 'accuracy (%)']:.1f}%")
    misses = readings[~readings["correct"]]
    described = pd.Series([f"{row.source} {row.label} " + ("found blank" if pd.isna(row.predicted) else
                                                            f"read as {int(row.predicted)}")
                           for row in misses.itertuples()]).value_counts()
    bullets.append(
        f"**Photos (this run's model):** {by_condition.loc['all', 'correct']} of {by_condition.loc['all', 'pictures']}"
        f" pictures read correctly ({by_condition.loc['all', 'accuracy (%)']:.1f}%); {weakest}. Misses: "
        + (", ".join(f"{what} ({count}x)" for what, count in described.items()) if len(misses) else "none") + ".")
    return "\n".join(f"- {bullet}" for bullet in bullets)
