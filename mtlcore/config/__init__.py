"""One experiment's configuration: a tree of frozen dataclasses.

The whole tree is saved next to every result (``config.json``), round-trips
through JSON (``to_dict`` / ``from_dict``) and through flat ``key=value`` pairs
(``to_flat`` / ``from_flat``), which is what ``--set`` on the command line and
the app's URL query parameters use:

    dataset.name=shapes  tasks=shape,color  model.arch=hard  loss.weights.shape=2

This module is plain data: it imports nothing else from mtlcore and no torch,
so ``import mtlcore.config`` is quick and any layer may use it. It checks only
what needs no registry (types, ranges, the device's spelling:
``structural_problem``). Whether a name is known (dataset, architecture,
trunk, weighting method, optimiser, schedule, loss) is for each registry to
say; ``mtlcore.validation.validate`` asks them all, once, where a config
comes in (the Train page, ``Runner.submit``, the command line), and raises a
``ConfigError`` whose message names the setting and what is allowed.
"""
from __future__ import annotations

from typing import Any

from .checks import (MAX_FOCAL_GAMMA, MAX_L1, MAX_LOSS_WEIGHT, MAX_METHOD_OPTION, MAX_SEED, MAX_SOFT_LAMBDA,
                     MAX_WEIGHT_DECAY, MIN_LABEL_FRACTION, RISKY, divergence_causes, structural_problem)
from .experiment import ExperimentConfig
from .keys import parse_assignment, set_key
from .sections import (ConfigError, DatasetConfig, LossConfig, ModelConfig, OptimConfig, RegConfig, TrainConfig,
                       WeightingConfig)

__all__ = [
    "ConfigError", "DatasetConfig", "ExperimentConfig", "LossConfig", "ModelConfig", "OptimConfig", "RegConfig",
    "TrainConfig", "WeightingConfig", "divergence_causes", "parse_assignment", "set_key", "structural_problem",
    "MAX_FOCAL_GAMMA", "MAX_L1", "MAX_LOSS_WEIGHT", "MAX_METHOD_OPTION", "MAX_SEED", "MAX_SOFT_LAMBDA",
    "MAX_WEIGHT_DECAY", "MIN_LABEL_FRACTION", "RISKY",
]


# Names that moved next to their registries.
def __getattr__(name: str) -> Any:
    """Old import paths (``from mtlcore.config import validate, OPTIMIZERS``), loaded on first use.

    The choices now live next to their factories (each registry lists its
    own names) and ``validate`` in ``mtlcore.validation``, which may import
    them; importing this module alone still loads none of them (PEP 562).
    """
    if name == "validate":
        from ..validation import validate
        return validate
    if name in ("OPTIMIZERS", "SCHEDULES"):
        from .. import optim
        return tuple(getattr(optim, name).names())
    if name == "TRUNKS":
        from ..models.trunks import TRUNKS
        return tuple(TRUNKS.names())
    if name == "REGRESSION_LOSSES":
        from ..losses import REGRESSION_LOSS_NAMES
        return REGRESSION_LOSS_NAMES
    if name == "PRECISIONS":
        from ..speed import PRECISIONS
        return PRECISIONS
    if name == "DIAGNOSTICS_COSINES":
        from ..diagnostics import COSINES
        return COSINES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
