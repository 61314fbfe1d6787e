"""Packed training: runs on one dataset trained together as one stacked model.

A study trains a dozen small models on the same data: baselines, a
multi-task model, a few seeds each. One step of a small MLP is mostly fixed
costs (Python, dispatch, a few microseconds per tiny kernel), so training
the members one after another pays those costs N times. Here the N
members' parameters are stacked along a new first dimension and one step
trains all of them: N small matrix products become one batched product.

One job per file:

    grouping.py        which runs pack (the pack key, decided once when a run
                       is queued), how many in one pack, whether stacking pays
                       on a device; MAX_PACKED_RUNS, MTL_PACKING
    grouped_layers.py  GroupedLinear, GroupedBatchNorm, grouped_model: N
                       members' layers as one
    stacked.py         PackedRuns (the stacked model: its parameters, batches,
                       forward pass) and StackedMeters
    loop.py            fit_packed (the training loop for a pack) and fit_many
                       (any list of configs, packed where that pays)

    >>> from mtlcore.packing import fit_many
    >>> results = fit_many([config_a, config_b, config_c])   # FitResults, in order

The names below are imported when first used (PEP 562), so that the runner
and the store can ask ``grouping`` without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it.
_HOMES = {
    "MAX_PACKED_RUNS": "grouping", "PACKING_VARIABLE": "grouping", "Packing": "grouping",
    "first_pack": "grouping", "pack_groups": "grouping", "pack_key": "grouping", "packing_enabled": "grouping",
    "packing_of": "grouping", "part_size": "grouping", "pays_on": "grouping",
    "GROUPED_LAYERS": "grouped_layers", "GroupedBatchNorm": "grouped_layers", "GroupedLinear": "grouped_layers",
    "can_group": "grouped_layers", "grouped_model": "grouped_layers",
    "PackedRuns": "stacked", "StackedMeters": "stacked",
    "EVAL_ROWS": "loop", "fit_many": "loop", "fit_packed": "loop",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
