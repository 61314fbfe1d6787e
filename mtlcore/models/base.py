"""What every multi-task architecture offers the engine.

An architecture maps an input batch to one output per task and says which
parameters are *shared* (receive gradients from more than one task) and which
belong to one task. Gradient-combination methods and diagnostics use that
split; the engine never asks which architecture it holds.
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

    def __init__(self, tasks: dict[str, int]):
        """``tasks`` maps each task name to its output size."""
        super().__init__()
        self.task_names = list(tasks)

    def make_heads(self, in_features: int, tasks: dict[str, int]) -> nn.ModuleDict:
        return nn.ModuleDict({t: make_head(in_features, size) for t, size in tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that receive gradients from more than one task."""
        raise NotImplementedError

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


ARCHITECTURES: Registry[type[MultiTaskModel]] = Registry("architecture")
