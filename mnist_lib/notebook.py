"""What keeps the notebooks thin: their papermill parameters checked against TrainConfig, and the Results table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields

import pandas as pd

from .config import TrainConfig
from .errors import ConfigError

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
