"""Small helpers that keep the notebooks thin: parameter checking and the Results table."""

from __future__ import annotations

import pandas as pd

from .engine import TrainConfig


def check_path_parameter(name: str, value) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name}={value!r} is invalid: {name} must be a path string or None")


def configure(model: str, *, data_dir=None, out_dir=None, **params) -> TrainConfig:
    """Validate papermill parameters (papermill does no type checking) into a TrainConfig.

    Raises ValueError naming the first bad parameter, e.g. `-p epochs abc` or `-p epochs -1`.
    """
    check_path_parameter("data_dir", data_dir)
    check_path_parameter("out_dir", out_dir)
    unknown = set(params) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(TrainConfig.__dataclass_fields__)}")
    return TrainConfig(model=model, **params).validate()


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
