"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019).

"End-to-End Multi-Task Learning with Attention", eq. 7. A task whose loss
fell *less* over the last epoch gets *more* weight. With L_t(k) the mean
training loss of task t over epoch k, for epoch k >= 3:

    r_t = L_t(k-1) / L_t(k-2)                      (relative descent rate)
    w_t = T * exp(r_t / temperature) / sum_i exp(r_i / temperature)

where T is the number of tasks, so the weights sum to T. The first two
epochs have no two past losses to compare: w_t = 1. A larger temperature
makes the weights more even (the paper uses 2). The weights change once per
epoch and need no gradients, which makes DWA about as cheap as static weights.
"""
from __future__ import annotations

import math

from .base import WEIGHTINGS, LossWeighting


def dwa_weights(last: dict[str, float], before_last: dict[str, float], temperature: float) -> dict[str, float]:
    """w_t = T * softmax_t(r_t / temperature), with r_t = last[t] / before_last[t]."""
    ratios = {t: last[t] / max(before_last[t], 1e-12) for t in last}
    top = max(ratios.values())  # subtracted before exp: same softmax, no overflow
    exps = {t: math.exp((r - top) / temperature) for t, r in ratios.items()}
    total = sum(exps.values())
    return {t: len(exps) * e / total for t, e in exps.items()}


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(LossWeighting):
    """w_t = T * softmax(r_t / temperature), r_t = L_t(epoch-1) / L_t(epoch-2)."""

    summary = "Gives more weight to tasks whose loss fell least last epoch (Liu et al. 2019)."
    batches_problems = True  # one weight per task and epoch; a batch of problems shares the epochs

    def __init__(self, *, temperature: float = 2.0):
        super().__init__(temperature=temperature)
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be above 0, got {temperature}.")
        self.history: list[dict[str, float]] = []  # mean training loss per task, one dict per epoch
        self.current: dict[str, float] = {}

    def setup(self, tasks, user_weights, model, kinds=None, problems=None):
        super().setup(tasks, user_weights, model, kinds, problems)
        self.history = []
        self.current = {t: 1.0 for t in self.tasks}

    def weights(self, losses):
        return self.current

    def end_epoch(self, epoch, train_losses):
        self.history.append({t: float(train_losses[t]) for t in self.tasks})
        if len(self.history) >= 2:
            self.current = dwa_weights(self.history[-1], self.history[-2], self.temperature)

    def state_dict(self):
        return {"history": self.history[-2:], "current": dict(self.current)}

    def load_state_dict(self, state):
        self.history = [dict(h) for h in state["history"]]
        self.current = dict(state["current"])
