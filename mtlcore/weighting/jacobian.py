"""Per-task gradients in one backward pass: the rows of the Jacobian.

Gradient-combination methods, GradNorm and the diagnostics all need each
task's gradient separately. Calling ``backward`` once per task walks the
graph T times. Instead we ask autograd for the vector-Jacobian products with
the T one-hot vectors e_1 .. e_T *at once* (``is_grads_batched=True``, which
runs the backward under ``torch.vmap``):

    rows[p][t] = d outputs[t] / d p        for every parameter p

Some operations have no batching rule for their backward; then we fall back
to a loop of T ordinary ``autograd.grad`` calls, which gives the same numbers.
On the CPU the loop is also the faster of the two (measured on the shapes
CNN: 3 tasks, 119 ms looped against 209 ms batched, as vmap's convolution
and BatchNorm backward rules copy and concatenate), so the batched call is
used on accelerators only, where it saves T - 1 rounds of kernel launches.
Nothing is written to ``.grad``: callers decide what to do with the rows.
"""
from __future__ import annotations

from typing import Sequence

import torch


def jacobian_rows(outputs: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
                  batched: bool | None = None) -> list[torch.Tensor]:
    """For each parameter p, a tensor of shape (len(outputs), *p.shape).

    Row t holds the gradient of the scalar ``outputs[t]`` with respect to p
    (zeros where ``outputs[t]`` does not depend on p). The graph is kept, so
    the caller may still differentiate the outputs again. ``batched``: one
    vmapped backward pass (default: on accelerators only, see above).
    """
    if batched is None:
        batched = outputs[0].device.type != "cpu"
    if not batched:
        return jacobian_rows_by_loop(outputs, params)
    stacked = torch.stack([o.reshape(()) for o in outputs])
    one_hots = torch.eye(len(outputs), dtype=stacked.dtype, device=stacked.device)
    try:
        grads = torch.autograd.grad(
            stacked, params, grad_outputs=one_hots, is_grads_batched=True, retain_graph=True, allow_unused=True,
        )
    except RuntimeError:
        # An operation without a vmap rule for its backward: one call per row.
        return jacobian_rows_by_loop(outputs, params)
    # A parameter that no output reaches gets None: make its rows zeros.
    return [torch.zeros(len(outputs), *p.shape, dtype=p.dtype, device=p.device) if g is None else g
            for g, p in zip(grads, params)]


def jacobian_rows_by_loop(outputs: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Same result as ``jacobian_rows``, with one backward pass per output."""
    per_output = [
        torch.autograd.grad(o, params, retain_graph=True, allow_unused=True, materialize_grads=True)
        if o.requires_grad else [torch.zeros_like(p) for p in params]
        for o in outputs
    ]
    return [torch.stack([grads[i] for grads in per_output]) for i in range(len(params))]


class TaskGradients:
    """Every task's gradient on every trainable parameter, for one step, computed at most once.

    Several parts of a training step may want the tasks' separate gradients:
    the diagnostics (their cosines), a gradient-combination method (its
    Jacobian), and the update itself. Each costs T backward passes through
    the trunk, the dearest part of a step, so one ``TaskGradients`` per step
    is shared: whoever asks first pays, the others reuse the rows. A method
    that only weights losses then builds its update from the rows (see
    ``backward``) instead of a (T+1)-th backward pass.

    ``losses``: {task: scalar loss}, graph alive; ``params``: the trainable
    parameters, in the order the rows come back.
    """

    def __init__(self, losses: dict[str, torch.Tensor], params: Sequence[torch.Tensor]):
        self.losses = losses
        self.tasks = list(losses)
        self.params = list(params)
        self._rows: list[torch.Tensor] | None = None

    @property
    def computed(self) -> bool:
        """True once someone has paid for the rows."""
        return self._rows is not None

    def rows(self, tasks: Sequence[str] | None = None) -> list[torch.Tensor]:
        """For each parameter, len(tasks) x shape: row k is d L_{tasks[k]} / d parameter.

        ``tasks``: all of them (default, kept for the rest of the step) or a
        subset (a method leaving out tasks whose slider is 0); a subset is
        cut from the kept rows when they exist, else computed alone and not kept.
        """
        if tasks is None or list(tasks) == self.tasks:
            if self._rows is None:
                self._rows = jacobian_rows([scalar(self.losses[t]) for t in self.tasks], self.params)
            return self._rows
        if self._rows is None:
            return jacobian_rows([scalar(self.losses[t]) for t in tasks], self.params)
        index = [self.tasks.index(t) for t in tasks]
        return [row[index] for row in self._rows]

    def backward(self, objective_of, extra: torch.Tensor, coefficients: dict | None = None) -> None:
        """Fill ``.grad`` as ``(objective_of(losses) + extra).backward()`` would, reusing the rows.

        By the chain rule, when the objective depends on the model only
        through the losses,  d objective / d theta = sum_t c_t g_t  with
        c_t = d objective / d L_t: T numbers, from a backward pass through
        the objective alone (losses held as constants; it also gives the
        method's own parameters, such as learned log-variances, their
        gradients). ``extra`` (the regularisers) is back-propagated as usual.

        ``coefficients``: the c_t themselves ({task: number or one per
        problem}), known in closed form (``backward_objective``'s
        ``closed_form``); then ``objective_of`` is not called, and the
        method's own parameters get their gradients from the caller.
        """
        rows = self.rows()
        if coefficients is None:
            constants = {t: loss.detach().requires_grad_() for t, loss in self.losses.items()}
            objective_of(constants).backward()
            coefficients = {t: constants[t].grad for t in self.tasks}
        like = self.losses[self.tasks[0]]
        coefficients = torch.stack([
            torch.zeros_like(like) if coefficients[t] is None
            else torch.as_tensor(coefficients[t], dtype=like.dtype, device=like.device).expand_as(like)
            for t in self.tasks
        ])
        for p, row in zip(self.params, rows):
            if coefficients.dim() == 1:
                set_grad(p, torch.tensordot(coefficients.to(row.dtype), row, dims=1))
            else:  # a batch of problems (``Weighting.batches_problems``): c_{t,b} times problem b's slice of row t
                c = coefficients.to(row.dtype).reshape(*coefficients.shape, *[1] * (row.dim() - coefficients.dim()))
                set_grad(p, (c * row).sum(dim=0))
        if extra.requires_grad:
            extra.backward()


def scalar(loss: torch.Tensor) -> torch.Tensor:
    """The loss itself, or the sum of a batch of independent problems' losses (one per problem):
    its gradient on problem b's parameters is problem b's own loss's gradient."""
    return loss if loss.dim() == 0 else loss.sum()


def set_grad(p: torch.Tensor, grad: torch.Tensor) -> None:
    """Add ``grad`` to ``p.grad`` (or set it), laid out in memory as ``p`` is.

    A channels-last weight wants a channels-last gradient: the fused
    optimiser and autograd's later accumulation expect the two to match.
    """
    if grad.stride() != p.stride():
        grad = torch.empty_like(p).copy_(grad)
    p.grad = grad if p.grad is None else p.grad + grad


def backward_objective(objective_of, losses: dict[str, torch.Tensor], extra: torch.Tensor,
                       gradients: TaskGradients | None = None, closed_form=None) -> None:
    """``(objective_of(losses) + extra).backward()``, from ``gradients`` when they are already computed.

    What every loss-weighting method does with its objective: when the
    diagnostics have paid for the per-task gradients this step, the update is
    built from them (``TaskGradients.backward``) instead of one more
    backward pass through the trunk.

    ``closed_form``: for that case, a function giving the objective's
    derivatives without autograd, ({task: d objective / d L_t}, [(own
    parameter, its gradient)]), or None to let autograd find them; called
    only when the gradients are computed. Then no backward pass is needed
    at all (on the toy problem, where a step of equal weights costs about a
    hundred microseconds, that pass was half of it).
    """
    if gradients is not None and gradients.computed:
        known = closed_form() if closed_form is not None else None
        if known is None:
            gradients.backward(objective_of, extra)
            return
        coefficients, own = known
        gradients.backward(objective_of, extra, coefficients)
        for parameter, grad in own:
            set_grad(parameter, grad)
        return
    total = objective_of(losses)
    (total + extra if extra.requires_grad else total).backward()
