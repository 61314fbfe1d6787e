"""Optimisers and learning-rate schedules, registered by name (``optim.name``, ``optim.schedule``).

    sgd      plain SGD with ``optim.momentum`` (Polyak 1964)
    adam     Adam (Kingma & Ba, ICLR 2015); the default
    adamw    Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019)
    rmsprop  RMSprop (Tieleman & Hinton 2012, lecture 6.5), with ``optim.momentum``
    adagrad  Adagrad (Duchi, Hazan & Singer, JMLR 2011)

    none     a constant learning rate
    cosine   cosine annealing to zero over ``train.epochs`` (Loshchilov & Hutter, ICLR 2017, without restarts)
    step     times ``optim.gamma`` every ``optim.step_size`` epochs

The app lists its choices from ``OPTIMIZERS`` and ``SCHEDULES``; each name is
written once, here, next to what it builds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from .registry import Registry

if TYPE_CHECKING:
    from .config import ExperimentConfig
    from .speed import Speed


@dataclass(frozen=True)
class OptimizerChoice:
    """An ``OPTIMIZERS`` entry: the torch class, and whether ``optim.momentum`` applies to it."""

    factory: Callable[..., torch.optim.Optimizer]
    takes_momentum: bool = False


OPTIMIZERS: Registry[OptimizerChoice] = Registry("optimiser")
OPTIMIZERS.register("sgd")(OptimizerChoice(torch.optim.SGD, takes_momentum=True))
OPTIMIZERS.register("adam")(OptimizerChoice(torch.optim.Adam))
OPTIMIZERS.register("adamw")(OptimizerChoice(torch.optim.AdamW))
OPTIMIZERS.register("rmsprop")(OptimizerChoice(torch.optim.RMSprop, takes_momentum=True))
OPTIMIZERS.register("adagrad")(OptimizerChoice(torch.optim.Adagrad))

# Each schedule: (config, optimizer) -> an epoch-level torch scheduler, or None.
SCHEDULES: Registry[Callable[["ExperimentConfig", torch.optim.Optimizer], Any]] = Registry("schedule")
SCHEDULES.register("none")(lambda config, optimizer: None)
SCHEDULES.register("cosine")(
    lambda config, optimizer: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.train.epochs))
SCHEDULES.register("step")(
    lambda config, optimizer: torch.optim.lr_scheduler.StepLR(optimizer, config.optim.step_size, config.optim.gamma))


def optim_problem(config: "ExperimentConfig") -> str | None:
    """Why ``config``'s optimiser or schedule is not known (one sentence listing the valid ones); None if both are."""
    if config.optim.name not in OPTIMIZERS:
        return (f"Unknown optimiser {config.optim.name!r} (optim.name); choose one of: "
                f"{', '.join(OPTIMIZERS.names())}.")
    if config.optim.schedule not in SCHEDULES:
        return (f"Unknown schedule {config.optim.schedule!r} (optim.schedule); choose one of: "
                f"{', '.join(SCHEDULES.names())}.")
    return None


def make_optimizer(config: "ExperimentConfig", params: list[torch.nn.Parameter],
                   speed: "Speed | None" = None) -> torch.optim.Optimizer:
    """The optimiser ``config.optim.name``, fused when ``speed`` says so."""
    choice = OPTIMIZERS.get(config.optim.name)
    kwargs = {"lr": config.optim.lr, "weight_decay": config.reg.weight_decay}
    if choice.takes_momentum:
        kwargs["momentum"] = config.optim.momentum
    if speed is not None:
        return speed.make_optimizer(choice.factory, params, **kwargs)
    return choice.factory(params, **kwargs)


def make_scheduler(config: "ExperimentConfig", optimizer: torch.optim.Optimizer):
    """An epoch-level learning-rate schedule, or None."""
    return SCHEDULES.get(config.optim.schedule)(config, optimizer)
