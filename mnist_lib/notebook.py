"""What keeps the notebooks thin: their papermill parameters checked against TrainConfig, the Results tables, and
this run set against the committed series (so a run with other parameters shows its own numbers as its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields

import pandas as pd

from .config import TrainConfig
from .errors import ConfigError
from .records import meets_target
from .studies import mean_std

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
    return [m for m in series if m["model"] == metrics["model"]
            and m["config"]["augment"] == metrics["config"]["augment"]]


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
    """One sentence: how far this run's final accuracy is from the series' mean, and whether that is more than
    the seeds' spread (sample std) or within noise."""
    same = _same_configuration(metrics, series)
    if len(same) < 2:
        return "The committed series has fewer than 2 seeds of this configuration: no seed spread to compare with."
    finals = pd.Series([m["summary"]["final_test_acc"] for m in same])
    difference = metrics["summary"]["final_test_acc"] - finals.mean()
    verdict = "within noise" if abs(difference) <= finals.std(ddof=1) else "more than the seeds' spread"
    return (f"This run's final-epoch accuracy is {difference:+.2f} points from the committed series' mean "
            f"({finals.mean():.2f}% over {len(same)} seeds, std {finals.std(ddof=1):.2f}): {verdict}.")
