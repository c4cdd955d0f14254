"""Notebook 04's helpers: its parameters checked, the family described, the frontier run (committed runs reused)
and its answer in words."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from . import studies
from .anatomy import latency_ms, macs
from .config import TrainConfig
from .errors import ConfigError
from .models import count_parameters, create_model
from .notebook import PATH_PARAMETERS, check_path_parameter
from .records import FRONTIER_BUDGET, summary_values, target_accuracy
from .runs import by_size, committed_runs_dir, default_runs_dir, settings_of


def requested_frontier(namespace: Mapping) -> list[TrainConfig]:
    """The runs notebook 04's parameters ask for (`sizes`, `seeds`, `epochs`, `train_limit`, `test_limit`,
    `device`), checked: ConfigError naming the first bad parameter."""
    for name in PATH_PARAMETERS:
        check_path_parameter(name, namespace.get(name))
    out_dir = namespace.get("out_dir")
    if out_dir is not None and Path(out_dir).resolve().is_relative_to(committed_runs_dir().resolve()):
        raise ConfigError(f"out_dir={out_dir!r} is invalid: out_dir must be outside training-logs/ (the committed "
                          "record, which takes runs only by `python -m mnist_lib promote`); leave it None for runs/")
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


def frontier_with_superlight(runs: list[dict], series: list[dict]) -> list[dict]:
    """A frontier's runs plus a series' SuperLight (with augmentation; for the committed frontier the series of
    2026-11, records.NATIVE_SERIES, made with the sweep's input gradients) as its 5.0k point, when every
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


def frontier_verdict(runs: list[dict], budget: int = FRONTIER_BUDGET) -> str:
    """The frontier's answer in words: the smallest model whose every seed held the headline accuracy in each of
    its last 3 epochs, and whether one within `budget` parameters did (else the closest one within it)."""
    goal = target_accuracy("superlight")
    models = by_size(runs)

    def minima(members: list[dict]) -> pd.Series:
        return summary_values(members, "last3_min")

    def described(members: list[dict]) -> str:
        lowest = minima(members)
        return (f"**{members[0]['model']}** ({members[0]['parameters']:,} parameters: {sum(lowest >= goal)} of "
                f"{len(members)} seeds, seeds' last-3 minima {lowest.mean():.2f}% on average, worst "
                f"{lowest.min():.2f}%)")

    every = [members for members in models if all(m["summary"]["last3_min"] >= goal for m in members)]
    first = (f"The smallest model whose every seed held {goal}% in each of its last 3 epochs: {described(every[0])}."
             if every else f"No model here held {goal}% in each of its last 3 epochs on every seed.")
    if every and every[0][0]["parameters"] <= budget:
        return f"{first} **The target of at most {budget:,} parameters is met.**"
    within = [members for members in models if members[0]["parameters"] <= budget]
    # Ranked by the mean of the seeds' minima, not the worst seed: a model with more seeds has more chances to miss.
    closest = max(within, key=lambda members: minima(members).mean()) if within else None
    return (f"{first} **The target of at most {budget:,} parameters is not met**"
            + (f"; the closest within it: {described(closest)}." if closest else "."))


def frontier_analysis(runs: list[dict]) -> str:
    """Each size's mean final accuracy against the next smaller size's, judged against the seeds' spread
    (studies.versus), as markdown bullets."""
    models = by_size(runs)
    finals = [pd.Series([m["summary"]["final_test_acc"] for m in members]) for members in models]
    lines = ["Each size against the next smaller one (difference of the mean final-epoch accuracy, points):", ""]
    for index in range(1, len(models)):
        smaller, larger = models[index - 1][0], models[index][0]
        lines.append(f"- {smaller['model']} -> {larger['model']} ({smaller['parameters']:,} -> "
                     f"{larger['parameters']:,} parameters): {studies.versus(finals[index], finals[index - 1])}")
    fewest = min(len(members) for members in models)
    lines += ["", f"With {fewest} seeds per size, a difference only just beyond the spread is weak evidence: read "
                  "the shape of the curve, not a single step."]
    return "\n".join(lines)
