"""Random Loss Weighting (Lin, Ye, Xu, Shi & Zhang, TMLR 2022).

"Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task
Learning." At every step, draw fresh random weights

    lambda ~ N(0, I_T),    w = T * softmax(lambda)

so the weights are positive and their mean is 1. The paper's point: many
elaborate methods do no better than this, so it is the litmus test any
weighting method should beat. Random weights also help escape poor local
minima, much as the noise of SGD does.

The normalisation. The paper (and LibMTL's ``RLW``) use softmax(lambda),
weights summing to 1, and compare it with equal weighting at 1/T per task:
the same total weight, so that the two differ only by the randomness. Here
equal weighting gives every task 1 (the sliders' scale, as LibMTL's ``EW``
code does, whatever its docstring says), so RLW is scaled by T to keep that
comparison: with LibMTL's pair, under SGD, RLW also takes steps T times
smaller than EW, which mixes a learning-rate change into the comparison.
(Under Adam the factor hardly matters: Adam divides it out.) The standard
normal is the paper's default distribution, and softmax its normalisation.
"""
from __future__ import annotations

import torch

from .base import WEIGHTINGS, LossWeighting


def random_weights(n_tasks: int, generator: torch.Generator | None = None,
                   batch_shape: tuple[int, ...] = ()) -> torch.Tensor:
    """n_tasks * softmax of standard-normal samples: positive, summing to n_tasks (over the last
    dimension; ``batch_shape``: independent draws for a batch of problems)."""
    return n_tasks * torch.softmax(torch.randn(*batch_shape, n_tasks, generator=generator), dim=-1)


@WEIGHTINGS.register("rlw")
class RandomLossWeighting(LossWeighting):
    """w = T * softmax(lambda), lambda ~ N(0, I), drawn anew every step."""

    summary = "Random weights every step: the baseline any method should beat (Lin et al. 2022)."
    steerable_weights = True  # u_t * w_t with w_t drawn afresh: nothing learned undoes a moved slider
    batches_problems = True  # a batch of problems draws B x T weights, in the order B separate calls would

    def __init__(self):
        super().__init__()

    def weights(self, losses):
        # The global generator, seeded by the run's seed: reproducible on CPU.
        w = random_weights(len(self.tasks), batch_shape=self.batch_shape)
        if self.batch_shape:
            return {t: w[..., i] for i, t in enumerate(self.tasks)}
        return {t: float(w[i]) for i, t in enumerate(self.tasks)}
