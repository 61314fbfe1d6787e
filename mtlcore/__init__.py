"""mtlcore: the MTL Lab engine, usable with no Streamlit at all.

Public names (what the app and the command line call):

    ExperimentConfig, ConfigError, validate      one experiment's settings
    list_datasets, dataset_info, load_dataset    embedded datasets and tasks
    ARCHITECTURES, WEIGHTINGS                    registries the app lists
    fit, Callback, FitResult                     train in the foreground
"""
from .config import ConfigError, ExperimentConfig, validate
from .data import dataset_info, list_datasets, load_dataset
from .engine import Callback, FitResult, TrainingRun, fit
from .models import ARCHITECTURES
from .weighting import WEIGHTINGS

__all__ = [
    "ARCHITECTURES",
    "Callback",
    "ConfigError",
    "ExperimentConfig",
    "FitResult",
    "TrainingRun",
    "WEIGHTINGS",
    "dataset_info",
    "fit",
    "list_datasets",
    "load_dataset",
    "validate",
]
