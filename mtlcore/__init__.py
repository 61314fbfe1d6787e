"""mtlcore: the MTL Lab engine, usable with no Streamlit at all.

Public names (what the app and the command line call):

    ExperimentConfig, ConfigError, validate      one experiment's settings
    list_datasets, dataset_info, load_dataset    embedded datasets and tasks
    ARCHITECTURES, WEIGHTINGS                    registries the app lists
    fit, Callback, FitResult                     train in the foreground
    RunStore, Runner, RunRecord, default_home    background runs and their store
"""
from .config import ConfigError, ExperimentConfig, validate
from .data import dataset_info, list_datasets, load_dataset
from .engine import Callback, FitResult, TrainingRun, fit
from .models import ARCHITECTURES
from .runs import (
    NotOwnerError,
    QueueFullError,
    RunRecord,
    Runner,
    RunStore,
    StoreError,
    default_home,
    load_checkpoint,
)
from .weighting import WEIGHTINGS

__all__ = [
    "ARCHITECTURES",
    "Callback",
    "ConfigError",
    "ExperimentConfig",
    "FitResult",
    "NotOwnerError",
    "QueueFullError",
    "RunRecord",
    "RunStore",
    "Runner",
    "StoreError",
    "TrainingRun",
    "WEIGHTINGS",
    "dataset_info",
    "default_home",
    "load_checkpoint",
    "fit",
    "list_datasets",
    "load_dataset",
    "validate",
]
