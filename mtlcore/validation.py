"""``validate``: is this experiment possible? Asked once, where a config comes in.

The config itself checks what needs no registry (types and ranges:
``mtlcore.config.structural_problem``); every registry checks its own part,
each in one sentence that names the setting and lists what it accepts (as
timm's registry does for an unknown name):

    dataset     mtlcore.data.dataset_problem      the name, its options, its tasks
    model       mtlcore.models.model_problem      the architecture, then the trunk
    weighting   mtlcore.weighting.weighting_problem   the method and its options
    optimiser   mtlcore.optim.optim_problem       optim.name and optim.schedule
    loss        mtlcore.losses.loss_problem       loss.regression
    precision   mtlcore.speed.PRECISIONS, diagnostics' cosine (train.*)
    memory      mtlcore.budget.check_memory       last: it builds the model on the meta device

Who calls it: the boundaries, where a config arrives from a person: the
Train page, ``Runner.submit`` and ``submit_batch`` (every queued run), the
command line's ``train``, and a study's plan. A config read back from the run
store was validated when it was queued, so workers, the packed loop and the
pack key trust it and do not ask again.
"""
from __future__ import annotations

from .budget import check_memory
from .config import ConfigError, ExperimentConfig, structural_problem
from .data import DATASETS, dataset_problem
from .diagnostics import COSINES
from .losses import loss_problem
from .models import model_problem
from .optim import optim_problem
from .speed import PRECISIONS
from .weighting import weighting_problem

__all__ = ["ConfigError", "problem", "validate"]


def problem(config: ExperimentConfig) -> str | None:
    """The first thing that makes ``config`` impossible, as one sentence; None when it can be trained."""
    found = dataset_problem(config) or structural_problem(config)
    if found:
        return found
    info = DATASETS.get(config.dataset.name)
    return (model_problem(config, info.input_kind, info.name)
            or weighting_problem(config)
            or optim_problem(config)
            or _train_problem(config)
            or loss_problem(config.loss)
            or check_memory(config))


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """Check ``config`` against the registries; raise ConfigError if impossible.

    Returns the config unchanged so that calls can be chained.
    """
    found = problem(config)
    if found:
        raise ConfigError(found)
    return config


def _train_problem(config: ExperimentConfig) -> str | None:
    train = config.train
    if train.diagnostics_cosine not in COSINES:
        return f"Unknown train.diagnostics_cosine {train.diagnostics_cosine!r}; choose one of: {', '.join(COSINES)}."
    if train.precision not in PRECISIONS:
        return f"Unknown precision {train.precision!r} (train.precision); choose one of: {', '.join(PRECISIONS)}."
    return None
