"""FAMO: Fast Adaptive Multitask Optimization (Liu, Liu, Jin, Stone & Liu, NeurIPS 2023).

FAMO aims to decrease every task's loss at the same *relative* rate, using
only loss values (no per-task gradients, so it costs what static weights
cost). With task weights z = softmax(xi) over learned logits xi, the model
follows

    total = c * sum_t z_t * log(L_t + eps),   c = 1 / sum_t (z_t / (L_t + eps))   (c held constant)

whose gradient is  sum_t (c z_t / L_t) grad L_t : the effective weight of
task t is c z_t / L_t, a convex combination of the log-losses' gradients.
After the model moved, the logits are updated from how much each log-loss
fell,

    delta_t = log L_t(before) - log L_t(after),    xi <- Adam step along  J_softmax(xi)^T delta

so a task whose loss fell more than the others gets less weight next time.
The paper recomputes the losses on the same batch after the step, which
costs a second forward pass; like LibMTL we use the next step's losses
instead (a different batch: noisier, but free). The logits have their own
Adam (lr 0.025 and weight decay 0.001, as in the paper), separate from the
model's optimiser. The sliders u_t multiply each task's term.
"""
from __future__ import annotations

import torch

from .base import WEIGHTINGS, Weighting
from .jacobian import backward_objective

EPS = 1e-8


@WEIGHTINGS.register("famo")
class FAMO(Weighting):
    """total = c * sum_t z_t log L_t, z = softmax(xi); xi follows the log-loss decreases."""

    summary = "Balances how fast each task's loss falls, from loss values alone (Liu et al. 2023)."

    def __init__(self, *, lr: float = 0.025, weight_decay: float = 0.001):
        super().__init__(lr=lr, weight_decay=weight_decay)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        if self.lr < 0 or self.weight_decay < 0:
            raise ValueError(f"lr and weight_decay must be 0 or more, got {lr} and {weight_decay}.")
        self.logits: torch.Tensor | None = None  # made by setup
        self.logit_optimizer: torch.optim.Optimizer | None = None
        self.previous_losses: torch.Tensor | None = None

    def setup(self, tasks, user_weights, model):
        super().setup(tasks, user_weights, model)
        device = next(model.parameters()).device
        self.logits = torch.zeros(len(self.tasks), device=device, requires_grad=True)
        self.logit_optimizer = torch.optim.Adam([self.logits], lr=self.lr, weight_decay=self.weight_decay)
        self.previous_losses = None

    def update_logits(self, before: torch.Tensor, after: torch.Tensor) -> None:
        """One Adam step on the logits along J_softmax^T delta."""
        delta = torch.log(before + EPS) - torch.log(after + EPS)
        with torch.enable_grad():
            direction = torch.autograd.grad(torch.softmax(self.logits, dim=0), self.logits, grad_outputs=delta)[0]
        self.logits.grad = direction
        self.logit_optimizer.step()

    def backward(self, losses, model, extra, gradients=None):
        task_losses = torch.stack([losses[t] for t in self.tasks])
        current = task_losses.detach()
        if self.previous_losses is not None:
            self.update_logits(self.previous_losses, current)
        self.previous_losses = current
        z = torch.softmax(self.logits, dim=0).detach()
        c = 1.0 / (z / (current + EPS)).sum()
        u = torch.tensor([self.user_weights[t] for t in self.tasks], device=current.device)
        def objective(losses):
            return c * (u * z * torch.log(torch.stack([losses[t] for t in self.tasks]) + EPS)).sum()

        backward_objective(objective, losses, extra, gradients)
        effective = u * c * z / (current + EPS)
        return {t: float(effective[i]) for i, t in enumerate(self.tasks)}

    def state_dict(self):
        return {
            "logits": self.logits.detach().cpu().tolist(),
            "previous_losses": None if self.previous_losses is None else self.previous_losses.cpu().tolist(),
        }

    def load_state_dict(self, state):
        with torch.no_grad():
            self.logits.copy_(torch.tensor(state["logits"]))
        if state["previous_losses"] is not None:
            self.previous_losses = torch.tensor(state["previous_losses"], device=self.logits.device)
