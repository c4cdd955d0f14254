"""What keeps the notebooks thin: their papermill parameters checked against TrainConfig, the Results tables, and
this run set against the committed series (so a run with other parameters shows its own numbers as its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from . import studies
from .anatomy import latency_ms, macs
from .config import TrainConfig
from .errors import ConfigError
from .models import count_parameters, create_model
from .records import meets_target, target_accuracy
from .runs import by_size, committed_runs_dir, configuration, default_runs_dir, settings_of
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
        "device": metrics["device"],
    }
    return pd.DataFrame({"value": rows})


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
    if len(same) < 2:
        return "The committed series has fewer than 2 seeds of this configuration: no seed spread to compare with."
    finals = pd.Series([m["summary"]["final_test_acc"] for m in same])
    verdict = versus(pd.Series([metrics["summary"]["final_test_acc"]]), finals)
    return (f"This run's final-epoch accuracy against the committed series' mean ({finals.mean():.2f}% over "
            f"{len(same)} seeds, std {finals.std(ddof=1):.2f}): {verdict}.")


def frontier_with_superlight(runs: list[dict], series: list[dict]) -> list[dict]:
    """A frontier's runs plus the committed series' SuperLight (with augmentation) as its 5.0k point, when every
    run has the SuperLight runs' settings apart from model and seed; else the runs alone (a quick pass with fewer
    epochs is not comparable with the series)."""
    superlight = [m for m in series if m["model"] == "superlight" and m["config"]["augment"]]

    def recipe(metrics: dict) -> dict:
        return {k: v for k, v in settings_of(metrics["config"]).items() if k not in ("model", "seed")}

    same_recipe = runs and superlight and all(recipe(m) == recipe(superlight[0]) for m in runs)
    return runs + superlight if same_recipe else runs


def with_latency(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (records.frontier_table) with each model's CPU latency for one image, measured now on this machine."""
    latency = [f"{latency_ms(create_model(model)):.2f}" for model in table["model"]]
    return table.assign(**{"parameters": table["parameters"].map("{:,}".format),
                           "CPU latency, 1 image (ms)": latency}).drop(columns="runs")


def frontier_verdict(runs: list[dict], budget: int = 4000) -> str:
    """The frontier's answer in words: the smallest model whose every seed held the headline accuracy in each of
    its last 3 epochs, and whether one within `budget` parameters did (else the closest one within it)."""
    goal = target_accuracy("superlight")
    models = by_size(runs)

    def described(members: list[dict]) -> str:
        held = sum(m["summary"]["last3_min"] >= goal for m in members)
        worst = min(m["summary"]["last3_min"] for m in members)
        return (f"**{members[0]['model']}** ({members[0]['parameters']:,} parameters: {held} of {len(members)} "
                f"seeds, worst seed's minimum {worst:.2f}%)")

    every = [members for members in models if all(m["summary"]["last3_min"] >= goal for m in members)]
    first = (f"The smallest model whose every seed held {goal}% in each of its last 3 epochs: {described(every[0])}."
             if every else f"No model here held {goal}% in each of its last 3 epochs on every seed.")
    if every and every[0][0]["parameters"] <= budget:
        return f"{first} **The target of at most {budget:,} parameters is met.**"
    within = [members for members in models if members[0]["parameters"] <= budget]
    closest = max(within, key=lambda members: min(m["summary"]["last3_min"] for m in members)) if within else None
    return (f"{first} **The target of at most {budget:,} parameters is not met**"
            + (f"; the closest within it (by its worst seed): {described(closest)}." if closest else "."))


def frontier_configs(namespace: Mapping) -> list[TrainConfig]:
    """The runs notebook 04's parameters ask for (`sizes`, `seeds`, `epochs`, `train_limit`, `test_limit`,
    `device`), checked: ConfigError naming the first bad parameter."""
    for name in PATH_PARAMETERS:
        check_path_parameter(name, namespace.get(name))
    sizes, seeds = namespace.get("sizes"), namespace.get("seeds")
    if sizes is not None and not (isinstance(sizes, list) and sizes):
        raise ConfigError(f"sizes={sizes!r} is invalid: sizes must be None or a non-empty list of frontier models")
    if not (isinstance(seeds, list) and seeds):
        raise ConfigError(f"seeds={seeds!r} is invalid: seeds must be a non-empty list of seeds, e.g. [1, 2, 3]")
    settings = {name: namespace[name] for name in ("epochs", "train_limit", "test_limit", "device")
                if name in namespace}
    return studies.frontier_configs(sizes, seeds, **settings)


def family_table(models: list[str]) -> pd.DataFrame:
    """Each model (once, smallest first, SuperLight among them): parameters, multiply-accumulates per image and
    the widths of its seven convs."""
    rows = []
    for name in dict.fromkeys([*models, "superlight"]):
        with torch.random.fork_rng(devices=[]):  # building a model to describe it must not move the caller's RNG
            model = create_model(name)
        widths = [m.out_channels for m in model.features.modules() if isinstance(m, nn.Conv2d)]
        rows.append({"model": name, "parameters": count_parameters(model), "MACs per image": macs(model),
                     "conv widths": ", ".join(map(str, widths))})
    table = pd.DataFrame(rows).sort_values("parameters", ignore_index=True)
    return table.assign(**{column: table[column].map("{:,}".format) for column in ("parameters", "MACs per image")})


def run_frontier(configs: list[TrainConfig], data_dir: str | None = None, out_dir: str | None = None) -> list[dict]:
    """Each config's run: a committed one of the same settings (training-logs/studies/) reused, else trained into
    <out_dir or the runs dir>/frontier; one line per run saying which."""
    committed = committed_runs_dir()
    runs = studies.run_configs(configs, Path(out_dir or default_runs_dir()) / "frontier",
                               reuse=committed.glob("studies/*/*"), data_dir=data_dir)
    for metrics in runs:
        path = Path(metrics["path"])
        where = (f"committed, {path.relative_to(committed)}" if path.is_relative_to(committed)
                 else f"this notebook's run, {path.name}")
        print(f"{metrics['model']} seed {metrics['config']['seed']}: final {metrics['summary']['final_test_acc']:.2f}%"
              f", last 3 epochs {metrics['summary']['last3_min']:.2f}-{metrics['summary']['last3_max']:.2f}% ({where})")
    return runs


def frontier_analysis(runs: list[dict]) -> str:
    """Each size's mean final accuracy against the next smaller size's, judged against the seeds' spread
    (studies.versus), as markdown bullets."""
    models = by_size(runs)
    finals = [pd.Series([m["summary"]["final_test_acc"] for m in members]) for members in models]
    lines = ["Each size against the next smaller one (difference of the mean final-epoch accuracy, points):", ""]
    for index in range(1, len(models)):
        smaller, larger = models[index - 1][0], models[index][0]
        lines.append(f"- {smaller['model']} -> {larger['model']} ({smaller['parameters']:,} -> "
                     f"{larger['parameters']:,} parameters): {versus(finals[index], finals[index - 1])}")
    return "\n".join(lines)
