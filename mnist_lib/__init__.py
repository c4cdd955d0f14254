"""Tiny MNIST CNNs: tensor data pipeline, model registry, training loop, run records and analysis tools.

Modules, lowest first (each imports only modules listed earlier; tests/test_layout.py checks):
errors, data, models, anatomy, config, training, runs, robustness, images, photos, studies, records, plots,
notebook, frontier, cli.
"""

from .config import TrainConfig
from .data import AugmentConfig, load_split
from .errors import ConfigError, UserError
from .models import MODELS, count_parameters, create_model
from .runs import Run, load_checkpoint, load_model, model_from_checkpoint, train

__all__ = [
    "MODELS",
    "AugmentConfig",
    "ConfigError",
    "Run",
    "TrainConfig",
    "UserError",
    "count_parameters",
    "create_model",
    "load_checkpoint",
    "load_model",
    "load_split",
    "model_from_checkpoint",
    "train",
]
