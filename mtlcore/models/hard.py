"""Hard parameter sharing, and the single-task baseline.

Hard sharing (Caruana, "Multitask Learning", Machine Learning 1997): one trunk
computes features for every task and each task has a small head of its own.
The shared trunk must serve every task, which regularises it when tasks are
related and hurts ("negative transfer") when they pull in different directions.
"""
from __future__ import annotations

from torch import nn

from .base import ARCHITECTURES, MultiTaskModel, TrunkFactory


@ARCHITECTURES.register("hard")
class HardSharing(MultiTaskModel):
    summary = "One shared trunk, one small head per task."

    def __init__(self, tasks: dict[str, int], make_trunk: TrunkFactory, head_hidden: int = 0, **_):
        super().__init__(tasks)
        self.trunk = make_trunk()
        self.heads = self.make_heads(self.trunk.out_features, tasks, head_hidden)

    def forward(self, x):
        features = self.trunk(x)
        return {t: head(features) for t, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return list(self.heads[task].parameters())


@ARCHITECTURES.register("single")
class SingleTask(HardSharing):
    """One trunk and one head: the single-task baseline (STL).

    Comparing each task's STL result with its result in a multi-task model
    is how negative transfer is measured.
    """

    summary = "One task alone: the baseline to compare against."

    @classmethod
    def incompatibility(cls, config) -> str | None:
        if len(config.tasks) != 1:
            return (f"model.arch=single trains one task; choose exactly one task or another architecture "
                    f"(got {len(config.tasks)} tasks).")
        return None
