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
from .trunks import TRUNKS, build_trunk, trunk_problem
from . import hard, soft, cross_stitch, mmoe  # noqa: F401  (registers them)

if TYPE_CHECKING:
    import torch

    from ..config import ExperimentConfig
    from ..data import TaskSpec

__all__ = ["ARCHITECTURES", "TRUNKS", "MultiTaskModel", "build_model", "count_parameters", "model_problem"]


def count_parameters(model: "torch.nn.Module") -> int:
    """Trainable numbers in ``model`` (what a parameter budget counts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_problem(config: "ExperimentConfig", input_kind: str, dataset: str) -> str | None:
    """What is wrong with ``config``'s model part for ``dataset``'s ``input_kind`` inputs; None when nothing is.

    The registries' own checks: the architecture is known and takes the
    config (``MultiTaskModel.incompatibility``), and so does the trunk
    (``trunks.trunk_problem``).
    """
    arch = config.model.arch
    if arch not in ARCHITECTURES:
        return f"Unknown architecture {arch!r} (model.arch); choose one of: {', '.join(ARCHITECTURES.names())}."
    return ARCHITECTURES.get(arch).incompatibility(config) or trunk_problem(config.model, input_kind, dataset)


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
