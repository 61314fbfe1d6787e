"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018).

"GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep
Multitask Networks." The task weights w_t are learned so that every task
trains at a similar *rate*. On a chosen shared layer W:

    G_t     = || grad_W (w_t L_t) ||  =  w_t || grad_W L_t ||   (gradient norm)
    G_mean  = mean_t G_t
    Ltilde_t = L_t(step) / L_t(0)        (inverse training rate: 1 = no progress)
    r_t     = Ltilde_t / mean_i Ltilde_i (relative inverse training rate)
    L_grad  = sum_t | G_t - G_mean * r_t ** alpha |

with the target G_mean * r_t ** alpha held constant. The w_t descend
L_grad, so a task that has made *less* progress (r_t > 1) is pushed towards
a *larger* gradient norm, i.e. a larger weight. After each step the weights
are renormalised to sum to T, the number of tasks. alpha sets how hard the
rates are pulled together (the paper uses 0.12 to 3; 1.5 is common).

The model itself follows  sum_t u_t w_t L_t  (u_t: the sliders), with w_t
held constant; only L_grad moves the w_t (through the model's optimiser).

W is "the last shared layer of weights" (the paper, section 3.2), which
each architecture names itself (``model.last_shared_layer()``): the trunk's
last layer for hard sharing, every expert's last layer for MMoE (the experts
run side by side, so each is a last shared layer), the last shared stage of
every column for cross-stitch (not the T x T mixing units). G_t is then the
norm of the task's gradient on all of them together. ``layer="all"`` uses
every shared parameter instead (as LibMTL does by default). GradNorm
therefore needs shared parameters.
"""
from __future__ import annotations

import torch

from .base import WEIGHTINGS, Weighting
from .jacobian import backward_objective, jacobian_rows


def gradnorm_loss(weights: torch.Tensor, grad_norms: torch.Tensor, loss_ratios: torch.Tensor,
                  alpha: float) -> torch.Tensor:
    """L_grad = sum_t |w_t n_t - mean(w n) * (r_t / mean r) ** alpha|, target held constant.

    ``grad_norms`` are the norms n_t = ||grad_W L_t|| of the *unweighted*
    losses and ``loss_ratios`` are L_t(now) / L_t(0).
    """
    norms = weights * grad_norms
    relative_rate = loss_ratios / loss_ratios.mean()
    target = (norms.mean() * relative_rate**alpha).detach()
    return (norms - target).abs().sum()


def gradnorm_layer(model: torch.nn.Module, layer: str) -> list[torch.Tensor]:
    """The shared parameters whose gradient norms GradNorm balances (W)."""
    if layer == "all":
        return [p for p in model.shared_parameters() if p.requires_grad]
    return model.last_shared_layer()


@WEIGHTINGS.register("gradnorm")
class GradNorm(Weighting):
    """Learned w_t minimising sum_t |G_t - mean(G) r_t^alpha|; weights sum to T."""

    summary = "Learns weights that make every task train at the same rate (Chen et al. 2018)."
    needs_task_gradients = True
    needs_shared_parameters = True

    def __init__(self, *, alpha: float = 1.5, layer: str = "last"):
        super().__init__(alpha=alpha, layer=layer)
        self.alpha = float(alpha)
        if self.alpha < 0:
            raise ValueError(f"alpha must be 0 or more, got {alpha}.")
        if layer not in ("last", "all"):
            raise ValueError(f"layer must be 'last' or 'all', got {layer!r}.")
        self.layer = layer
        self.task_weights: torch.nn.Parameter | None = None  # made by setup
        self.initial_losses: torch.Tensor | None = None  # L_t(0), from the first step

    def setup(self, tasks, user_weights, model, kinds=None):
        super().setup(tasks, user_weights, model, kinds)
        device = next(model.parameters()).device
        self.task_weights = torch.nn.Parameter(torch.ones(len(self.tasks), device=device))
        self.initial_losses = None

    def parameters(self):
        return [] if self.task_weights is None else [self.task_weights]

    def renormalise(self) -> None:
        """Keep the weights positive and summing to T (after the optimiser moved them)."""
        with torch.no_grad():
            w = self.task_weights.clamp_(min=1e-3)
            w.mul_(len(w) / w.sum())

    def backward(self, losses, model, extra, gradients=None):
        self.renormalise()
        w = self.task_weights
        task_losses = [losses[t] for t in self.tasks]
        current = torch.stack(task_losses).detach()
        if self.initial_losses is None:
            self.initial_losses = current.clamp(min=1e-12)
        # n_t = ||grad_W L_t||, all T at once; G_t = w_t n_t needs no second backward.
        rows = jacobian_rows(task_losses, gradnorm_layer(model, self.layer))
        grad_norms = torch.cat([r.flatten(1) for r in rows], dim=1).norm(dim=1)
        balance = gradnorm_loss(w, grad_norms, current / self.initial_losses, self.alpha)
        w.grad = torch.autograd.grad(balance, w)[0]
        # The model follows the weighted sum, with the weights held constant.
        weights = w.detach()

        def objective(losses):
            return sum(self.user_weights[t] * weights[i] * losses[t] for i, t in enumerate(self.tasks))

        backward_objective(objective, losses, extra, gradients)
        return {t: float(self.user_weights[t] * weights[i]) for i, t in enumerate(self.tasks)}

    def state_dict(self):
        return {
            "task_weights": self.task_weights.detach().cpu().tolist(),
            "initial_losses": None if self.initial_losses is None else self.initial_losses.cpu().tolist(),
        }

    def load_state_dict(self, state):
        with torch.no_grad():
            self.task_weights.copy_(torch.tensor(state["task_weights"]))
        if state["initial_losses"] is not None:
            self.initial_losses = torch.tensor(state["initial_losses"], device=self.task_weights.device)
