"""mtlcore: the MTL Lab engine, usable with no Streamlit at all.

Public names (what the app and the command line call):

    ExperimentConfig, ConfigError, validate      one experiment's settings
    list_datasets, dataset_info, load_dataset    embedded datasets and tasks
    ARCHITECTURES, WEIGHTINGS                    registries the app lists
    fit, Callback, FitResult                     train in the foreground
    RunStore, Runner, RunRecord, default_home    background runs and their store

The names are loaded on first use (PEP 562's module ``__getattr__``), so that
importing a light part such as ``mtlcore.config`` or ``mtlcore.home`` does not
load torch and the engine with it; ``from mtlcore import fit`` works as before.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Public name -> the module that defines it (relative to this package).
_WHERE = {
    "ConfigError": ".config",
    "ExperimentConfig": ".config",
    "validate": ".validation",
    "dataset_info": ".data",
    "list_datasets": ".data",
    "load_dataset": ".data",
    "Callback": ".engine",
    "FitResult": ".engine",
    "TrainingRun": ".engine",
    "fit": ".engine",
    "ARCHITECTURES": ".models",
    "WEIGHTINGS": ".weighting",
    "NotOwnerError": ".runs",
    "QueueFullError": ".runs",
    "RunRecord": ".runs",
    "Runner": ".runs",
    "RunStore": ".runs",
    "StoreError": ".runs",
    "default_home": ".home",
    "load_checkpoint": ".runs",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # ``mtlcore.runs`` after ``import mtlcore``
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
