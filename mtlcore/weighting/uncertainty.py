"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

"Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry
and Semantics." Each task t gets a learnable log-variance s_t = log sigma_t^2
(its homoscedastic uncertainty). For a Gaussian likelihood the negative log
likelihood of a task with loss L_t is, up to a constant,

    1 / (2 sigma_t^2) * L_t + log sigma_t  =  0.5 * exp(-s_t) * L_t + 0.5 * s_t

We use this *regression form for every task* (as torchjd's ``UW`` does);
the paper's classification form drops the first 1/2. Both have the same
optimum, exp(s_t) = L_t: a task whose loss stays large is judged noisy and
down-weighted, while the + 0.5 s_t term stops every weight from going to 0.
With the slider weights u_t the loss is

    total = sum_t u_t * (0.5 * exp(-s_t) * L_t + 0.5 * s_t)  (+ regularisers)

and the effective weight of task t is u_t * 0.5 * exp(-s_t). The s_t are
parameters of this object, trained by the model's own optimiser.
"""
from __future__ import annotations

import torch

from .base import WEIGHTINGS, LossWeighting


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """Learned log-variances s_t: total = sum_t 0.5 exp(-s_t) L_t + 0.5 s_t."""

    summary = "Learns each task's noise level and down-weights the noisy ones (Kendall et al. 2018)."

    def __init__(self, *, init_log_variance: float = 0.0):
        super().__init__(init_log_variance=init_log_variance)
        self.init_log_variance = float(init_log_variance)
        self.log_variance: torch.nn.Parameter | None = None  # made by setup, one per task

    def setup(self, tasks, user_weights, model):
        super().setup(tasks, user_weights, model)
        device = next(model.parameters()).device
        self.log_variance = torch.nn.Parameter(torch.full((len(self.tasks),), self.init_log_variance, device=device))

    def parameters(self):
        return [] if self.log_variance is None else [self.log_variance]

    def weights(self, losses):
        # d total / d L_t, without the slider: 0.5 * exp(-s_t).
        return {t: 0.5 * torch.exp(-self.log_variance[i]) for i, t in enumerate(self.tasks)}

    def objective(self, losses, weights, extra):
        # sum_t u_t * (0.5 exp(-s_t) L_t + 0.5 s_t): the + 0.5 s_t keeps the weights from vanishing.
        return extra + sum(
            self.user_weights[t] * (weights[t] * losses[t] + 0.5 * self.log_variance[i])
            for i, t in enumerate(self.tasks)
        )

    def state_dict(self):
        return {"log_variance": self.log_variance.detach().cpu().tolist()}

    def load_state_dict(self, state):
        with torch.no_grad():
            self.log_variance.copy_(torch.tensor(state["log_variance"]))
