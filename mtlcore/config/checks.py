"""The checks a config can make on its own: types are right, every number is in its range.

Whether a *name* is known (dataset, architecture, trunk, method, optimiser,
schedule, loss) is for its registry to say (``mtlcore.validation``).
"""
from __future__ import annotations

import math
import re
from typing import Any

from .experiment import ExperimentConfig
from .sections import ModelConfig

# Beyond these a value is a slip of the keyboard (or an attack), not an
# experiment: each trained, overflowed and then "diverged" with a hint that
# blamed the learning rate. Refused with the setting's name instead.
MAX_LOSS_WEIGHT = 1000.0  # the sliders go to 5
MAX_WEIGHT_DECAY = 1.0  # decay 1 pulls every weight to zero as fast as the data pushes it
MAX_L1 = 1.0
MAX_SOFT_LAMBDA = 1000.0  # the slider goes to 10
MAX_FOCAL_GAMMA = 10.0  # Lin et al. 2017 try 0 to 5; at 10 only hopeless examples still count
MAX_SEED = 2**32 - 1  # numpy's RandomState, which the datasets use, takes seeds below 2**32
MAX_METHOD_OPTION = 1e6  # any number given to a weighting method (alpha, temperature, ...)
MIN_LABEL_FRACTION = 0.05  # fewer labels than this leaves a few dozen on the small datasets

# Allowed, but large enough to make training blow up: the divergence hint names them.
RISKY = {"loss.weights": 10.0, "reg.weight_decay": 0.1, "reg.l1": 0.01, "reg.soft_lambda": 10.0,
         "loss.focal_gamma": 5.0}


def divergence_causes(config: ExperimentConfig) -> list[str]:
    """The settings of ``config`` that are allowed but large enough to make
    training diverge, as ``key=value`` texts (empty: blame the learning rate)."""
    causes = [f"loss.weights.{t}={config.weight(t):g}" for t in config.tasks
              if config.weight(t) > RISKY["loss.weights"]]
    for key, value in (("reg.weight_decay", config.reg.weight_decay), ("reg.l1", config.reg.l1),
                       ("reg.soft_lambda", config.reg.soft_lambda), ("loss.focal_gamma", config.loss.focal_gamma)):
        if value > RISKY[key]:
            causes.append(f"{key}={value:g}")
    return causes


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def structural_problem(config: ExperimentConfig) -> str | None:
    """The first setting of ``config`` out of its range, as one sentence; None when all are in range.

    Only what needs no registry: names (datasets, methods, optimisers...)
    and the dataset's options are checked by their registries
    (``mtlcore.validation``).
    """
    if len(set(config.tasks)) != len(config.tasks):
        return "A task is listed twice (tasks); list each task once."
    for task, weight in config.loss.weights.items():
        if not math.isfinite(weight) or not 0 <= weight <= MAX_LOSS_WEIGHT:
            return f"loss.weights.{task} must be a number from 0 to {MAX_LOSS_WEIGHT:g}, got {weight}."
    if config.tasks and all(config.weight(t) == 0 for t in config.tasks):
        return "All loss weights are zero (loss.weights); give at least one task a weight above 0."
    return _model_problem(config.model) or _training_problem(config) or _regularisation_problem(config)


def _model_problem(model: ModelConfig) -> str | None:
    if model.width < 1 or model.width > 1024:
        return f"model.width must be between 1 and 1024, got {model.width}."
    if model.num_experts < 1 or model.num_experts > 64:
        return f"model.num_experts must be between 1 and 64, got {model.num_experts}."
    if not 1 <= model.layers <= 8:
        return f"model.layers (hidden layers of the MLP trunk) must be between 1 and 8, got {model.layers}."
    for key in ("hidden", "expert_hidden", "head_hidden"):
        if not 0 <= getattr(model, key) <= 4096:
            return f"model.{key} must be between 0 (the default size) and 4096 units, got {getattr(model, key)}."
    return None


def _training_problem(config: ExperimentConfig) -> str | None:
    optim, train = config.optim, config.train
    if not optim.lr > 0:
        return f"The learning rate must be above 0 (optim.lr), got {optim.lr}."
    if optim.lr > 10:
        return f"The learning rate {optim.lr} is far too large (optim.lr); try a value between 0.0001 and 0.1."
    if not 0 <= optim.momentum < 1:
        return f"optim.momentum must be in [0, 1), got {optim.momentum}."
    if optim.step_size < 1 or not 0 < optim.gamma <= 1:
        return "optim.step_size must be >= 1 and optim.gamma in (0, 1]."
    if train.epochs < 1 or train.epochs > 1000:
        return f"train.epochs must be between 1 and 1000, got {train.epochs}."
    if train.batch_size < 2 or train.batch_size > 65536:
        # One example per batch cannot be normalised by BatchNorm (and gives no gradient average).
        return f"train.batch_size must be between 2 and 65536, got {train.batch_size}."
    for name in ("max_samples", "patience", "diagnostics_every"):
        if getattr(train, name) < 0:
            return f"train.{name} must be 0 or more, got {getattr(train, name)}."
    if train.log_every < 1:
        return f"train.log_every must be 1 or more, got {train.log_every}."
    fraction = train.label_fraction
    if not (_is_number(fraction) and math.isfinite(fraction) and MIN_LABEL_FRACTION <= fraction <= 1):
        return (f"train.label_fraction must be a number from {MIN_LABEL_FRACTION:g} to 1 (the fraction of training "
                f"samples that keep their labels), got {fraction}.")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", config.device):
        return f"Unknown device {config.device!r} (device); use auto, cpu, cuda, cuda:N or mps."
    for key, seed in (("seed", config.seed), ("dataset.seed", config.dataset.seed)):
        if not 0 <= seed <= MAX_SEED:
            return f"{key} must be a whole number from 0 to {MAX_SEED}, got {seed}."
    return None


def _regularisation_problem(config: ExperimentConfig) -> str | None:
    reg, loss = config.reg, config.loss
    if reg.weight_decay < 0 or reg.l1 < 0 or reg.soft_lambda < 0:
        return "reg.weight_decay, reg.l1 and reg.soft_lambda must be 0 or more."
    for key, value, top in (("reg.weight_decay", reg.weight_decay, MAX_WEIGHT_DECAY),
                            ("reg.l1", reg.l1, MAX_L1), ("reg.soft_lambda", reg.soft_lambda, MAX_SOFT_LAMBDA)):
        if value > top:
            return f"{key} must be at most {top:g}, got {value:g}; useful values are far smaller (e.g. 0.0001)."
    if not 0 <= reg.dropout < 1:
        return f"reg.dropout must be in [0, 1), got {reg.dropout}."
    if reg.soft_norm not in ("l1", "l2"):
        return f"reg.soft_norm must be l1 or l2, got {reg.soft_norm!r}."
    if not 0 <= loss.label_smoothing < 1:
        return f"loss.label_smoothing must be in [0, 1), got {loss.label_smoothing}."
    if not 0 <= loss.focal_gamma <= MAX_FOCAL_GAMMA:
        return (f"loss.focal_gamma must be from 0 to {MAX_FOCAL_GAMMA:g} (the focal-loss paper uses 0 to 5), "
                f"got {loss.focal_gamma:g}.")
    for key, value in config.weighting.options.items():
        if _is_number(value) and not (math.isfinite(value) and abs(value) <= MAX_METHOD_OPTION):
            return f"weighting.{key} must be a finite number of at most {MAX_METHOD_OPTION:g} in size, got {value}."
    return None
