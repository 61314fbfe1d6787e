"""The user's own weights: total = sum_t u_t * L_t (the sliders)."""
from __future__ import annotations

from .base import WEIGHTINGS, LossWeighting


@WEIGHTINGS.register("static")
class StaticWeighting(LossWeighting):
    """Fixed weights set by hand: w_t = 1, so the update follows sum_t u_t L_t."""

    summary = "Your slider weights, fixed during training (or moved live while it trains)."
    steerable_weights = True  # the sliders are the whole method
    batches_problems = True  # nothing of its own: a batch of problems is a summed objective

    def weights(self, losses):
        return {t: 1.0 for t in self.tasks}


@WEIGHTINGS.register("equal")
class EqualWeighting(LossWeighting):
    """Every task weighs 1, whatever the sliders say: sum_t L_t.

    The baseline that most MTL papers compare against.
    """

    summary = "Every task counts the same (ignores the sliders)."
    batches_problems = True

    def setup(self, tasks, user_weights, model, kinds=None, problems=None):
        super().setup(tasks, {t: 1.0 for t in tasks}, model, kinds, problems)

    def weights(self, losses):
        return {t: 1.0 for t in self.tasks}
