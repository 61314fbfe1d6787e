"""FAMO: Fast Adaptive Multitask Optimization (Liu, Feng, Stone & Liu, NeurIPS 2023).

FAMO aims to decrease every task's loss at the same *relative* rate, using
only loss values (no per-task gradients). With task weights z = softmax(xi)
over learned logits xi, the model follows

    total = c * sum_t z_t * log(L_t + eps),   c = 1 / sum_t (z_t / (L_t + eps))   (c held constant)

whose gradient is  sum_t (c z_t / L_t) grad L_t : the effective weight of
task t is c z_t / L_t, a convex combination of the log-losses' gradients.
After the model moved, the logits are updated from how much each log-loss
fell,

    delta_t = log L_t(before) - log L_t(after),    xi <- Adam step along  J_softmax(xi)^T delta

so a task whose loss fell more than the others gets less weight next time.

What follows the authors' code (github.com/Cranial-XIX/FAMO: ``famo.py`` and
``methods/weight_methods.py``; LibMTL's ``FAMO`` is the same):

* L(after) is the loss on the *same batch* after the update, one extra
  forward pass without gradients (the engine runs it for a method that
  ``wants_losses_after_step``, on copies of the BatchNorm statistics so
  that they are not updated twice). Where no one calls ``after_step`` (the
  toy problem, whose losses have no batches) the next step's losses are
  used instead, which there is the same number.
* eps = 1e-8 and losses measured from 0 (the authors' ``min_losses`` is 0
  in every experiment but their toy): FAMO needs losses above 0.
* The logits have their own Adam, lr 0.025 (``w_lr``), with weight decay
  gamma = 0.001: the paper's Algorithm 2 and LibMTL use 1e-3, as do the
  authors' runs on NYUv2, CelebA and QM9 (``run.sh``; 0.01 on Cityscapes
  and in ``famo.py``; 1e-5 is an unused default in ``weight_methods.py``).
* The shared parameters' gradient is clipped to norm ``max_norm`` = 1.0
  after the backward pass, as ``famo.py`` and their trainers do (0 turns
  it off). Other methods here are not clipped: compare with that in mind.

The sliders u_t multiply each task's term.

Per-step bookkeeping kept to what the method needs (it is meant to cost
about what equal weights cost): J_softmax^T delta in closed form,
z * (delta - z . delta), which is the very formula of softmax's backward,
instead of an autograd call; the sliders as a tensor made once.

A batch of independent problems (``batches_problems``, the toy's five
starts): logits of shape (B, T), one Adam over all of them (Adam acts on
each number alone, so B separate optimisers would give the same), and the
clipping per problem.
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
    wants_losses_after_step = True
    batches_problems = True

    def __init__(self, *, lr: float = 0.025, weight_decay: float = 0.001, max_norm: float = 1.0):
        super().__init__(lr=lr, weight_decay=weight_decay, max_norm=max_norm)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.max_norm = float(max_norm)
        if self.lr < 0 or self.weight_decay < 0 or self.max_norm < 0:
            raise ValueError(f"lr, weight_decay and max_norm must be 0 or more, got {lr}, {weight_decay} and {max_norm}.")
        self.logits: torch.Tensor | None = None  # made by setup
        self.logit_optimizer: torch.optim.Optimizer | None = None
        self.previous_losses: torch.Tensor | None = None  # L(before) of the last step, until its L(after) is known

    def setup(self, tasks, user_weights, model, kinds=None, problems=None):
        super().setup(tasks, user_weights, model, kinds, problems)
        device = next(model.parameters()).device
        self.logits = torch.zeros(*self.batch_shape, len(self.tasks), device=device, requires_grad=True)
        # Fused where the engine's own optimiser is (speed.py: the CPU and CUDA): one kernel instead of the
        # dozen tiny operations of a plain Adam step, which on a small model is much of what FAMO adds to a step.
        self.logit_optimizer = torch.optim.Adam([self.logits], lr=self.lr, weight_decay=self.weight_decay,
                                                fused=device.type in ("cpu", "cuda"))
        self.previous_losses = None
        self.shared = [p for p in getattr(model, "shared_parameters", lambda: [])() if p.requires_grad]
        self.sliders = torch.tensor([self.user_weights[t] for t in self.tasks], device=device)

    @classmethod
    def incompatibility(cls, config):
        """Also: FAMO takes log L_t, so a loss that can be negative (the Gaussian NLL) is refused."""
        problem = super().incompatibility(config)
        if problem or config.loss.regression != "gaussian_nll":
            return problem
        from ..data import dataset_info  # here: the data package is not needed to weight losses

        try:
            kinds = {spec.name: spec.kind for spec in dataset_info(config.dataset.name).tasks}
        except Exception:  # an unknown dataset: validate says so in its own words
            return None
        if any(kinds.get(t) == "regression" for t in config.tasks):
            return ("famo takes the logarithm of every task's loss, and the Gaussian negative log-likelihood "
                    "(loss.regression=gaussian_nll) can be negative; choose loss.regression=mse, l1 or huber, "
                    "or another weighting method such as uncertainty.")
        return None

    def update_logits(self, before: torch.Tensor, after: torch.Tensor) -> None:
        """One Adam step on the logits along J_softmax^T delta."""
        delta = torch.log(before + EPS) - torch.log(after + EPS)
        with torch.no_grad():
            z = torch.softmax(self.logits, dim=-1)
            self.logits.grad = z * (delta - (z * delta).sum(dim=-1, keepdim=True))  # J_softmax(xi)^T delta
        self.logit_optimizer.step()

    def backward(self, losses, model, extra, gradients=None):
        task_losses = torch.stack([losses[t] for t in self.tasks], dim=-1)  # (*batch, T)
        current = task_losses.detach()
        if self.previous_losses is not None:  # no after_step since the last step: the next step's losses stand in
            self.update_logits(self.previous_losses, current)
        self.previous_losses = current
        z = torch.softmax(self.logits, dim=-1).detach()
        c = 1.0 / (z / (current + EPS)).sum(dim=-1)  # one per problem
        u = self.sliders

        def objective(losses):
            logs = torch.log(torch.stack([losses[t] for t in self.tasks], dim=-1) + EPS)
            return (c * (u * z * logs).sum(dim=-1)).sum()

        # d objective / d L_t = c u_t z_t / (L_t + eps): the effective weights, handed over so that an update
        # built from already computed task gradients needs no backward pass through the objective.
        effective = u * c.unsqueeze(-1) * z / (current + EPS)
        backward_objective(objective, losses, extra, gradients,
                           closed_form=lambda: ({t: effective[..., i] for i, t in enumerate(self.tasks)}, []))
        if self.max_norm > 0 and self.shared:
            if self.batch_shape:
                clip_each_problem(self.shared, self.max_norm)
            else:
                torch.nn.utils.clip_grad_norm_(self.shared, self.max_norm)
        return {t: effective[..., i].tolist() for i, t in enumerate(self.tasks)}

    def after_step(self, losses: dict[str, torch.Tensor]) -> None:
        """The same batch's losses after the update: move the logits now (the authors' ``update``)."""
        if self.previous_losses is None:
            return
        after = torch.stack([losses[t] for t in self.tasks]).detach()
        self.update_logits(self.previous_losses, after)
        self.previous_losses = None

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


def clip_each_problem(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` for each problem of a batch on its own: row b of every parameter is problem b's."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([g.flatten(1).pow(2).sum(dim=1) for g in grads]).sum(dim=0).sqrt()
    factor = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # as clip_grad_norm_: never scaled up
    for g in grads:
        g.mul_(factor.view(-1, *[1] * (g.dim() - 1)))
