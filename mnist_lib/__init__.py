"""Tiny MNIST CNNs: tensor data pipeline, model registry, training engine and analysis tools."""

from .data import AugmentConfig, load_split
from .engine import TrainConfig, fit, load_checkpoint, model_from_checkpoint
from .models import MODELS, count_parameters, create_model

__all__ = [
    "MODELS",
    "AugmentConfig",
    "TrainConfig",
    "count_parameters",
    "create_model",
    "fit",
    "load_checkpoint",
    "load_split",
    "model_from_checkpoint",
]
