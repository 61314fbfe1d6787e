"""Soft parameter sharing: one network per task, tied by a penalty.

Each task gets its own trunk ("column") and head. Nothing is shared; instead
the loss gains a term that pulls corresponding weights of the columns
together (Duong et al., ACL 2015, "Low Resource Dependency Parsing: Cross-
lingual Parameter Sharing in a Neural Network Parser"; Yang & Hospedales,
ICLR 2017 workshop, "Trace Norm Regularised Deep Multi-Task Learning"):

    penalty = lambda * sum over layers l, task pairs (a, b) of ||W_a^l - W_b^l||^2

(or the L1 norm). lambda = 0 gives independent networks; a large lambda
forces identical columns, i.e. hard sharing.

"Soft sharing" shares no parameter in the sense that gradient methods and
diagnostics mean (one that more than one task's loss reaches): task t's
loss reaches only column t and head t. The penalty is a regulariser on the
differences, not a task's loss, so ``shared_parameters`` is empty.
"""
from __future__ import annotations

from itertools import combinations

import torch
from torch import nn

from .base import ARCHITECTURES, MultiTaskModel, TrunkFactory


@ARCHITECTURES.register("soft")
class SoftSharing(MultiTaskModel):
    summary = "One network per task, pulled together by a penalty on their differences."
    has_shared_parameters = False
    uses = ("reg.soft_lambda", "reg.soft_norm")

    def __init__(self, tasks: dict[str, int], make_trunk: TrunkFactory,
                 soft_lambda: float = 0.01, soft_norm: str = "l2", head_hidden: int = 0, **_):
        super().__init__(tasks)
        self.columns = nn.ModuleDict({t: make_trunk() for t in tasks})
        self.heads = self.make_heads(next(iter(self.columns.values())).out_features, tasks, head_hidden)
        self.soft_lambda = soft_lambda
        self.soft_norm = soft_norm

    def forward(self, x):
        return {t: self.heads[t](self.columns[t](x)) for t in self.task_names}

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return list(self.columns[task].parameters()) + list(self.heads[task].parameters())

    def trunk_parameters(self) -> list[nn.Parameter]:
        return list(self.columns.parameters())

    def distance(self) -> torch.Tensor:
        """sum over layers and task pairs of ||W_a - W_b||^2 (or |W_a - W_b|_1).

        Only weight matrices and kernels count (not biases or BatchNorm
        statistics): they are what "the same layer" means.
        """
        total = torch.zeros((), device=next(self.parameters()).device)
        for a, b in combinations(self.task_names, 2):
            for wa, wb in zip(self.columns[a].parameters(), self.columns[b].parameters()):
                if wa.dim() < 2:
                    continue
                diff = wa - wb
                total = total + (diff.abs().sum() if self.soft_norm == "l1" else diff.pow(2).sum())
        return total

    def penalty(self) -> torch.Tensor:
        return self.soft_lambda * self.distance()
