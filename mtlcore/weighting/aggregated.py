"""Gradient combination: aggregate the tasks' gradients on shared parameters.

Loss weighting backpropagates one number, sum_t w_t L_t. Gradient
combination instead looks at every task's gradient on the *shared*
parameters theta_s, the rows of the Jacobian

    J = [ grad_theta_s (u_1 L_1) ; ... ; grad_theta_s (u_T L_T) ]     (T x n, u_t: sliders)

and maps J to one update direction d = A(J) with an *aggregator* A that
resolves conflicts between rows (MGDA, PCGrad, UPGrad, ... : see
``aggregators.py``; the aggregators themselves come from torchjd, Rey,
Quinton et al., "Jacobian Descent for Multi-Objective Optimization", 2024).
Each parameter then receives

    shared parameter:         d  (its slice)      + grad of the regularisers
    task-specific parameter:  grad (u_t L_t)      + grad of the regularisers

which is what torchjd's ``mtl_backward`` does, written here for any
architecture that can say which of its parameters are shared. Tasks whose
slider is 0 are left out of J (a zero row would make MGDA stop dead).

The rows come from ``jacobian.py``'s ``TaskGradients``: one batched
backward pass on an accelerator, T passes through one forward graph on the
CPU, shared with the diagnostics when they measure the same step. Most
aggregators are torchjd ``WeightedAggregator``s, d = alpha^T J; then the
logged weight of task t is u_t * alpha_t. For the others (GradDrop) the
sliders u_t are logged.

A batch of B independent problems (``batches_problems``, the toy's five
starts): one ``backward`` call takes every problem's Jacobian at once, and
runs one aggregator per problem on it (each keeps its own state, as
Nash-MTL's does). torchjd's aggregators take one matrix, and none of them
but GradDrop runs under ``torch.vmap`` (their solvers and data-dependent
loops), so that inner loop stays.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .base import Weighting
from .jacobian import TaskGradients, set_grad

if TYPE_CHECKING:  # torchjd itself is imported when a run starts (see aggregators.py)
    from torchjd.aggregation import Aggregator


class AggregatedGradient(Weighting):
    """Shared parameters get A(J), the aggregated rows of the task Jacobian.

    Subclasses say which torchjd aggregator A to use (``make_aggregator``);
    this class does the rest for every architecture.
    """

    needs_task_gradients = True
    needs_shared_parameters = True
    batches_problems = True

    def __init__(self, **options):
        super().__init__(**options)
        self.aggregator: Aggregator | None = None  # made by setup
        self.aggregators: list[Aggregator] = []  # one per problem (just ``aggregator`` for one problem)
        self.active: list[str] = []
        self.shared_ids: set[int] = set()

    def make_aggregator(self, n_tasks: int) -> Aggregator:
        """The torchjd aggregator for a Jacobian of ``n_tasks`` rows."""
        raise NotImplementedError

    def setup(self, tasks, user_weights, model, kinds=None, problems=None):
        super().setup(tasks, user_weights, model, kinds, problems)
        self.active = [t for t in self.tasks if self.user_weights[t] > 0]
        self.aggregators = [self.make_aggregator(len(self.active)) for _ in range(problems or 1)]
        self.aggregator = self.aggregators[0]
        self.shared_ids = {id(p) for p in model.shared_parameters()}

    def combine(self, jacobian: torch.Tensor, aggregator: Aggregator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The update direction d = A(J), and the row weights alpha when A has them.

        ``aggregator``: A (default: this method's one; a problem's own in a batch of problems).
        """
        from torchjd.aggregation import WeightedAggregator

        aggregator = self.aggregator if aggregator is None else aggregator
        if isinstance(aggregator, WeightedAggregator):
            # The aggregator's own weighting, then d = alpha^T J (as its forward does).
            alpha = aggregator.weighting(jacobian)
            return alpha @ jacobian, alpha
        return aggregator(jacobian), None

    def combine_each_problem(self, jacobians: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """A batch of problems' Jacobians (T x B x n): each problem's d_b = A_b(J_b), stacked (B x n)."""
        directions, alphas = [], []
        for b, aggregator in enumerate(self.aggregators):
            direction, alpha = self.combine(jacobians[:, b], aggregator)
            directions.append(direction)
            alphas.append(alpha)
        return torch.stack(directions), alphas

    def backward(self, losses, model, extra, gradients=None):
        if gradients is None:
            gradients = TaskGradients(losses, [p for p in model.parameters() if p.requires_grad])
        rows = gradients.rows(self.active)  # free when the diagnostics already took them this step
        sliders = torch.tensor([self.user_weights[t] for t in self.active], device=rows[0].device)
        rows = [times_sliders(row, sliders) for row in rows]
        is_shared = [id(p) in self.shared_ids for p in gradients.params]
        batch = len(self.batch_shape)  # a batch of problems: every row is T x B x (problem b's slice)
        jacobian = torch.cat([row.flatten(1 + batch) for row, s in zip(rows, is_shared) if s], dim=1 + batch)
        if batch:
            direction, alpha = self.combine_each_problem(jacobian)
        else:
            direction, alpha = self.combine(jacobian)
        offset = 0
        for p, row, shared in zip(gradients.params, rows, is_shared):
            if shared:
                size = p[0].numel() if batch else p.numel()
                grad = direction[..., offset : offset + size].reshape(p.shape)
                offset += size
            else:  # a task's own parameter: only its task's row is non-zero
                grad = row.sum(dim=0)
            set_grad(p, grad.detach())
        if extra.requires_grad:
            extra.backward()  # the regularisers' gradient is added to every parameter, never aggregated
        if batch:
            per_problem = [self.logged_weights(a) for a in alpha]
            return {t: [w[t] for w in per_problem] for t in self.tasks}
        return self.logged_weights(alpha)

    def logged_weights(self, alpha: torch.Tensor | None) -> dict[str, float]:
        """u_t * alpha_t per task (0 for tasks left out); the sliders when no alpha."""
        weights = {t: 0.0 for t in self.tasks}
        for k, t in enumerate(self.active):
            weights[t] = self.user_weights[t] * (float(alpha[k]) if alpha is not None else 1.0)
        return weights

    def state_dict(self):
        # The stateful aggregators (Nash-MTL) keep solver state that is not
        # worth saving: a resumed run simply restarts it.
        return {}


def times_sliders(rows: torch.Tensor, sliders: torch.Tensor) -> torch.Tensor:
    """Each task's row (T' x shape) times its slider u_t."""
    return rows * sliders.to(rows.dtype).view(-1, *([1] * (rows.dim() - 1)))
