"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

"Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry
and Semantics." Each task t gets a learnable log-variance s_t = log sigma_t^2
(its homoscedastic uncertainty) and its term in the loss is the task's
negative log-likelihood, up to a constant (the paper, eq. 7 and 10):

    regression      (Gaussian likelihood):           1 / (2 sigma_t^2) * L_t + log sigma_t
                                                  =  0.5 * exp(-s_t) * L_t + 0.5 * s_t
    classification  (softmax with temperature sigma^2): 1 / sigma_t^2 * L_t + log sigma_t
                                                  =  exp(-s_t) * L_t + 0.5 * s_t

``form="paper"`` (the default) gives each task the form of its kind.
``form="libmtl"`` uses the regression form for every task, as LibMTL's
``UW`` and torchjd's ``UW`` do (LibMTL also starts from s_t = -0.5; set
``init_log_variance`` for that).

The optimum in s_t for a fixed loss (set the derivative to zero): regression
-0.5 exp(-s_t) L_t + 0.5 = 0, so sigma_t^2 = L_t; classification
-exp(-s_t) L_t + 0.5 = 0, so sigma_t^2 = 2 L_t. The two forms therefore
learn different variances, although at its optimum either gives the task
the same weight, 1 / (2 L_t): a task whose loss stays large is judged noisy
and down-weighted, while the + 0.5 s_t term stops every weight from going
to 0. With s_t = 0 at the start, a classification task starts at weight 1
and a regression task at 0.5 (LibMTL's form: every task at 0.5).

With the slider weights u_t and c_t = 1 (classification, paper form) or 1/2:

    total = sum_t u_t * (c_t * exp(-s_t) * L_t + 0.5 * s_t)  (+ regularisers)

and the effective weight of task t is u_t * c_t * exp(-s_t). The s_t are
parameters of this object, trained by the model's own optimiser.
"""
from __future__ import annotations

import torch

from .base import WEIGHTINGS, LossWeighting, summed

FORMS = ("paper", "libmtl")


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """Learned log-variances s_t: total = sum_t c_t exp(-s_t) L_t + 0.5 s_t, c_t = 1 or 1/2 by task kind."""

    summary = "Learns each task's noise level and down-weights the noisy ones (Kendall et al. 2018)."
    batches_problems = True  # a batch of problems: one log-variance per problem and task

    def __init__(self, *, init_log_variance: float = 0.0, form: str = "paper"):
        super().__init__(init_log_variance=init_log_variance, form=form)
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}.")
        self.init_log_variance = float(init_log_variance)
        self.form = form
        self.log_variance: torch.nn.Parameter | None = None  # made by setup, one per task
        self.factors: dict[str, float] = {}  # c_t

    def setup(self, tasks, user_weights, model, kinds=None, problems=None):
        super().setup(tasks, user_weights, model, kinds, problems)
        device = next(model.parameters()).device
        shape = (*self.batch_shape, len(self.tasks))
        self.log_variance = torch.nn.Parameter(torch.full(shape, self.init_log_variance, device=device))
        self.factors = {t: self.factor(self.kinds[t]) for t in self.tasks}

    def factor(self, kind: str) -> float:
        """c_t: 1 for classification in the paper's form (1/sigma^2), else 1/2 (1/(2 sigma^2))."""
        return 1.0 if self.form == "paper" and kind == "classification" else 0.5

    def parameters(self):
        return [] if self.log_variance is None else [self.log_variance]

    def weights(self, losses):
        # d total / d L_t, without the slider: c_t * exp(-s_t).
        return {t: self.factors[t] * torch.exp(-self.log_variance[..., i]) for i, t in enumerate(self.tasks)}

    def objective(self, losses, weights, extra):
        # sum_t u_t * (c_t exp(-s_t) L_t + 0.5 s_t): the + 0.5 s_t (= log sigma_t) keeps the weights from vanishing.
        return extra + summed(sum(
            self.user_weights[t] * (weights[t] * losses[t] + 0.5 * self.log_variance[..., i])
            for i, t in enumerate(self.tasks)
        ))

    def closed_form(self, losses, weights):
        # d total / d L_t = u_t c_t exp(-s_t) = u_t w_t;  d total / d s_t = u_t (0.5 - c_t exp(-s_t) L_t).
        coefficients = {t: self.user_weights[t] * weights[t].detach() for t in self.tasks}
        log_variance = torch.stack([self.user_weights[t] * (0.5 - weights[t].detach() * losses[t].detach())
                                    for t in self.tasks], dim=-1)
        return coefficients, [(self.log_variance, log_variance)]

    def state_dict(self):
        return {"log_variance": self.log_variance.detach().cpu().tolist()}

    def load_state_dict(self, state):
        with torch.no_grad():
            self.log_variance.copy_(torch.tensor(state["log_variance"]))
