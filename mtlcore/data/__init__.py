"""Datasets and their tasks.

Embedded datasets need no network: ``shapes`` and ``synthetic`` are generated
from a seed, ``digits`` and ``multidigits`` are built from the 8x8 handwritten
digits that scikit-learn ships.

Datasets read with torchvision (``multimnist``, ``multifashion``, ``cifar10``,
``celeba``) need their files in the data folder; until they are there they
are listed with ``unavailable_reason()`` saying which files to place where,
and loading them raises a ValueError with that sentence. Datasets the user
imported (``own_import``) live in ``MTL_HOME/datasets`` and are registered
when this package is imported (``own.refresh``).

    >>> from mtlcore.data import list_datasets, load_dataset
    >>> data = load_dataset("shapes", seed=0, n_samples=600)
"""
from __future__ import annotations

import functools
import json
import math
from typing import Any

from .base import DATASETS, RECONSTRUCTION, DatasetInfo, MTLData, Split, TaskSpec

# Importing the modules registers the datasets.
from . import shapes, digits, multidigits, synthetic  # noqa: E402,F401
from . import multimnist, cifar10, celeba  # noqa: E402,F401
from . import own  # noqa: E402

__all__ = [
    "DATASETS",
    "RECONSTRUCTION",
    "DatasetInfo",
    "MTLData",
    "Split",
    "TaskSpec",
    "clear_loaded",
    "dataset_info",
    "dataset_problem",
    "list_datasets",
    "load_dataset",
    "refresh_datasets",
]


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset, in registration order (imported ones last,
    rescanned from the data folder so that another process's imports show)."""
    own.refresh()
    return [DATASETS.get(name) for name in DATASETS.names()]


def refresh_datasets() -> list[str]:
    """Rescan the data folder for imported datasets and drop loaded tensors.

    Returns one sentence per imported dataset that could not be read.
    """
    problems = own.refresh()
    clear_loaded()
    return problems


def clear_loaded() -> None:
    """Forget the datasets loaded in this process (they are rebuilt or read
    from the data folder's cache on the next ``load_dataset``)."""
    _load_cached.cache_clear()


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; an unknown name lists the valid ones."""
    return DATASETS.get(name)


def resolve_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The dataset's defaults overridden by ``options``; unknown options raise."""
    info = DATASETS.get(name)
    options = dict(options or {})
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        valid = ", ".join(sorted(info.options)) or "none"
        raise ValueError(
            f"Dataset {name!r} has no option {unknown[0]!r}; its options are: {valid}."
        )
    resolved = dict(info.options)
    for key, value in options.items():
        default = info.options[key]
        # Coerce to the default's type so that "0.5" from a URL becomes 0.5.
        try:
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int) and not isinstance(value, bool):
                value = int(float(value))
            elif isinstance(default, float):
                value = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
            kind = "a whole number" if isinstance(default, int) else "a number"
            raise ValueError(f"Option dataset.{key} of {name!r} must be {kind} (default {default}), got {value!r}.") from None
        resolved[key] = value
    return resolved


def dataset_problem(config: Any) -> str | None:
    """What is wrong with ``config``'s dataset part, in one sentence; None when nothing is.

    The registry's own check (``mtlcore.validation`` asks it first): the
    dataset exists, its options are known and in range (the dataset's
    ``footprint`` checks them before a worker builds anything), and the
    tasks and loss weights name tasks that it has.
    """
    name = config.dataset.name
    if name not in DATASETS:
        return f"Unknown dataset {name!r} (dataset.name); choose one of: {', '.join(DATASETS.names())}."
    info = DATASETS.get(name)
    for key, value in config.dataset.options.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"dataset.{key} must be a finite number, got {value}."
    try:
        options = resolve_options(name, config.dataset.options)
        if info.footprint is not None:
            info.footprint(**options)  # the dataset's own range checks, before a worker builds it
    except (ValueError, TypeError) as error:
        return str(error)
    valid_tasks = [t.name for t in info.tasks]
    if not config.tasks:
        return f"Choose at least one task (tasks); {info.name} has: {', '.join(valid_tasks)}."
    for task in config.tasks:
        if task not in valid_tasks:
            return f"Dataset {info.name!r} has no task {task!r} (tasks); its tasks are: {', '.join(valid_tasks)}."
    for task in config.loss.weights:
        if task not in valid_tasks:
            return (f"loss.weights.{task} names a task that {info.name!r} does not have; its tasks are: "
                    f"{', '.join(valid_tasks)}.")
    return None


def load_dataset(name: str, seed: int = 0, **options: Any) -> MTLData:
    """Build (or fetch from the in-process cache) dataset ``name``.

    The result is cached per (name, seed, options): a warm worker that trains
    many runs on one dataset generates it once. Callers must not modify the
    returned tensors in place.
    """
    resolved = resolve_options(name, options)
    # Checked before the cache: files deleted since the last load must not
    # go unnoticed, and an unavailable dataset says what to place where.
    problem = DATASETS.get(name).unavailable_reason()
    if problem:
        raise ValueError(problem)
    return _load_cached(name, seed, json.dumps(resolved, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, seed: int, options_json: str) -> MTLData:
    info = DATASETS.get(name)
    return info.build(seed=seed, **json.loads(options_json))


DATASETS.add_finder(own.find)
own.refresh()  # imported datasets persist across restarts
