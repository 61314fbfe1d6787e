"""What every multi-task architecture offers the engine.

An architecture maps an input batch to one output per task and says which
parameters are *shared* (receive gradients from more than one task's loss)
and which belong to one task: every parameter is one or the other
(``tests/test_models.py`` checks this for every architecture by back-
propagating each task's loss alone). Gradient-combination methods and
diagnostics use that split, and GradNorm asks for the ``last_shared_layer``;
the engine never asks which architecture it holds.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import torch
from torch import nn

from ..registry import Registry
from .trunks import Trunk, make_head

TrunkFactory = Callable[[], Trunk]


class MultiTaskModel(nn.Module):
    """Base class: ``forward(x) -> {task: output}``."""

    #: One line for the app's selector.
    summary: ClassVar[str] = ""
    #: False when no parameter is shared (soft sharing ties copies instead).
    has_shared_parameters: ClassVar[bool] = True
    #: Flat config keys that only this architecture reads (the Train page shows their controls for it alone).
    uses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tasks: dict[str, int]):
        """``tasks`` maps each task name to its output size."""
        super().__init__()
        self.task_names = list(tasks)

    @classmethod
    def incompatibility(cls, config) -> str | None:
        """Why this architecture cannot train ``config`` (one sentence), or None.

        Asked by ``mtlcore.validation`` before a run is queued, as weighting
        methods are; the default accepts every config.
        """
        return None

    def make_heads(self, in_features: int, tasks: dict[str, int], hidden: int = 0) -> nn.ModuleDict:
        """One head ("tower") per task; ``hidden`` units in its hidden layer (0: ``make_head``'s default)."""
        return nn.ModuleDict({t: make_head(in_features, size, hidden) for t, size in tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that receive gradients from more than one task's loss (and only those)."""
        raise NotImplementedError

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The weights of the last shared layer: GradNorm's W (Chen et al., ICML 2018, section 3.2).

        Default: the last weight matrix or kernel that ``shared_parameters``
        lists (hard sharing: the trunk's last layer). Architectures whose
        shared parameters run side by side (MMoE's experts, cross-stitch's
        columns) override it with the last layer of each; empty when nothing
        is shared.
        """
        return last_weights(self.shared_parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that only ``task``'s loss reaches."""
        raise NotImplementedError

    def trunk_parameters(self) -> list[nn.Parameter]:
        """Everything but the task heads (what the L1 regulariser acts on)."""
        head_ids = {id(p) for t in self.task_names for p in self.task_parameters(t)}
        return [p for p in self.parameters() if id(p) not in head_ids]

    def penalty(self) -> torch.Tensor:
        """The architecture's own regulariser (soft sharing's tie); zero here."""
        return torch.zeros((), device=next(self.parameters()).device)


def last_weights(params) -> list[nn.Parameter]:
    """The last weight matrix or kernel among ``params`` (the last parameter if none is one), as a list."""
    params = [p for p in params if p.requires_grad]
    matrices = [p for p in params if p.dim() >= 2]
    return [(matrices or params)[-1]] if params else []


ARCHITECTURES: Registry[type[MultiTaskModel]] = Registry("architecture")
