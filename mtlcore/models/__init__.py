"""Multi-task architectures, registered by name, and how to build one.

    hard          one shared trunk, a head per task (Caruana 1997)
    soft          a network per task tied by an L2/L1 penalty (Duong et al. 2015)
    cross_stitch  per-task columns mixed by learned units (Misra et al. 2016)
    mmoe          shared experts with a gate per task (Ma et al. 2018)
    single        one task alone: the baseline
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from .base import ARCHITECTURES, MultiTaskModel
from .trunks import build_trunk
from . import hard, soft, cross_stitch, mmoe  # noqa: F401  (registers them)

if TYPE_CHECKING:
    from ..config import ExperimentConfig
    from ..data import TaskSpec

__all__ = ["ARCHITECTURES", "MultiTaskModel", "build_model"]


def build_model(config: "ExperimentConfig", tasks: "list[TaskSpec]", input_kind: str,
                input_shape: tuple[int, ...]) -> MultiTaskModel:
    """The architecture ``config.model.arch`` for ``tasks`` and inputs of ``input_shape``."""
    from ..losses import output_size  # here: losses import the data package, which models need not
    make_trunk = partial(
        build_trunk, config.model.trunk, input_kind, tuple(input_shape), config.model.width,
        config.reg.batchnorm, config.reg.dropout, layers=config.model.layers, hidden=config.model.hidden,
    )
    # An architecture with experts (MMoE) sizes them by model.expert_hidden (0: as the trunk).
    make_expert = partial(make_trunk, hidden=config.model.expert_hidden or config.model.hidden)
    arch = ARCHITECTURES.get(config.model.arch)
    return arch(
        {t.name: output_size(t, config.loss) for t in tasks},  # the loss says how many outputs a head needs
        make_trunk,
        input_shape=tuple(input_shape),
        num_experts=config.model.num_experts,
        make_expert=make_expert,
        head_hidden=config.model.head_hidden,
        soft_lambda=config.reg.soft_lambda,
        soft_norm=config.reg.soft_norm,
    )
