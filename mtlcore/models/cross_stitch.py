"""Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016).

Each task has its own column of trunk stages. After every stage but the
last, a cross-stitch unit lets each task's next stage see a learned mix of
all columns' features:

    x_t' = sum_s alpha[t, s] * x_s

alpha starts near the identity (each task mostly keeps its own features),
so training begins like separate networks and learns how much to share.

What is shared: a stage followed by a unit feeds every task, so every
task's loss reaches it, and the units themselves; the last stage of a
column comes after the last unit and feeds its own task only, so it is that
task's, like its head. (Listing it as shared made gradient methods such as
MGDA rescale a task's own layer, and distorted the gradient cosines.)
"""
from __future__ import annotations

import torch
from torch import nn

from .base import ARCHITECTURES, MultiTaskModel, TrunkFactory, last_weights


class CrossStitchUnit(nn.Module):
    """A learned T x T mixing matrix applied across the task columns."""

    def __init__(self, n_tasks: int, self_weight: float = 0.9):
        super().__init__()
        other = (1.0 - self_weight) / max(1, n_tasks - 1)
        alpha = torch.full((n_tasks, n_tasks), other)
        alpha.fill_diagonal_(self_weight if n_tasks > 1 else 1.0)
        self.alpha = nn.Parameter(alpha)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        stacked = torch.stack(features)  # T x N x ...
        mixed = torch.einsum("ts,s...->t...", self.alpha, stacked)
        return list(mixed.unbind(0))


@ARCHITECTURES.register("cross_stitch")
class CrossStitch(MultiTaskModel):
    summary = "One column per task, with learned units that mix the columns' features."

    def __init__(self, tasks: dict[str, int], make_trunk: TrunkFactory, head_hidden: int = 0, **_):
        super().__init__(tasks)
        self.columns = nn.ModuleDict({t: make_trunk() for t in tasks})
        n_stages = len(next(iter(self.columns.values())).stages)
        self.stitches = nn.ModuleList(CrossStitchUnit(len(tasks)) for _ in range(n_stages - 1))
        self.heads = self.make_heads(next(iter(self.columns.values())).out_features, tasks, head_hidden)

    def forward(self, x):
        features = [x for _ in self.task_names]
        columns = [self.columns[t] for t in self.task_names]
        for i, stitch in enumerate([*self.stitches, None]):
            features = [column.stages[i](f) for column, f in zip(columns, features)]
            if stitch is not None:
                features = stitch(features)
        return {t: self.heads[t](f) for t, f in zip(self.task_names, features)}

    def shared_stages(self, task: str) -> list[nn.Module]:
        """The stages of ``task``'s column that a cross-stitch unit follows: every task reads them."""
        return list(self.columns[task].stages)[: len(self.stitches)]

    def shared_parameters(self) -> list[nn.Parameter]:
        # Through the units every column's stages but the last reach every task.
        stages = [p for t in self.task_names for stage in self.shared_stages(t) for p in stage.parameters()]
        return stages + list(self.stitches.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        # After the last unit a column's last stage feeds its own task alone.
        own_stages = list(self.columns[task].stages)[len(self.stitches):]
        return [p for stage in own_stages for p in stage.parameters()] + list(self.heads[task].parameters())

    def trunk_parameters(self) -> list[nn.Parameter]:
        # The columns (every stage) and the units: everything but the heads, as for the other architectures.
        return list(self.columns.parameters()) + list(self.stitches.parameters())

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The last layer of every column's last shared stage, not the mixing units (T x T numbers)."""
        if not self.stitches:
            return []
        return [p for t in self.task_names for p in last_weights(self.shared_stages(t)[-1].parameters())]
