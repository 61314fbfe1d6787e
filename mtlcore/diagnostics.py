"""Live diagnostics: do the tasks fight over the shared parameters?

Every ``train.diagnostics_every`` steps the engine measures, on that step's
own forward pass and before its update, and once per epoch it asks for the
epoch's means (``end_epoch``). Two measurements:

Gradient conflict (Yu et al., NeurIPS 2020, "Gradient Surgery for
Multi-Task Learning", the PCGrad paper). With g_i the gradient of task i's
loss,

    cos(i, j) = g_i . g_j / (||g_i|| ||g_j||)

and the pair *conflicts* when cos < 0: a step that helps one task then
hurts the other (to first order). ``train.diagnostics_cosine`` says which g:

exact     (default) g_i = grad_theta_s L_i on the shared parameters, as in
          the paper: T backward passes through the trunk, on the training
          step's own graph (no extra forward pass).
features  g_i = grad_z L_i (N x D) on the shared representation z that every
          task's head reads (hard sharing): the approximation of Sener &
          Koltun's MGDA-UB (NeurIPS 2018, "Multi-Task Learning as
          Multi-Objective Optimization"). T backward passes through the small
          heads only. By the chain rule grad_theta_s L_i =
          (dz/dtheta_s)^T grad_z L_i with one Jacobian for every task, but
          that Jacobian is far from orthogonal, so the two cosines can
          differ: measured every 10 steps over 3 epochs (4 tasks), they
          correlate well on digits (Pearson r 0.91, same sign 78% of
          pairs) and poorly on the shapes CNN (r 0.15, same sign 46%),
          whose first convolution dominates the exact gradient. Use it to
          watch a trend cheaply, not to read off conflicts. Architectures
          without one such z (cross-stitch columns, MMoE's per-task
          mixtures) get the exact cosine.

Lookahead task affinity (Fifty, Amid, Zhao, Yu, Anil & Finn, NeurIPS 2021,
"Efficiently Identifying Task Groupings for Multi-Task Learning"). Take an
SGD step on task i alone, theta_s' = theta_s - lr * g_i (g_i the exact
gradient on the shared parameters here, heads unchanged), and see how task
j's loss on the same batch changes:

    Z(i->j) = 1 - L_j(theta_s') / L_j(theta_s)

Z > 0: training on i helps j; Z < 0: it hurts. lr is the optimiser's
current learning rate (the paper's lookahead is a plain SGD step, whatever
the optimiser). Z(i->i) is how much a step helps the task itself. It needs
the T exact gradients and T + 1 forward passes, several training steps'
worth, so it is taken on the first measured step of each epoch and then on
measured steps at least ``LOOKAHEAD_GAP`` steps apart (with
``diagnostics_every`` >= ``LOOKAHEAD_GAP``: on every measured step).

The logs are plain JSON. Pairs are keyed ``"a|b"`` for tasks a, b in the
order of ``tasks`` (a before b); directed affinities ``"i->j"`` for every
ordered pair including i = j, so the app can draw T x T heatmaps:

    a measured step  {"cosine":   {"shape|color": 0.12, ...},
                      "affinity": {"shape->color": 0.004, "shape->shape": 0.02, ...}}
                     ("affinity" only on the steps that took the lookahead)
    end_epoch        {"tasks": ["shape", "color", ...], "steps": 5, "affinity_steps": 1,
                      "cosine_mean":       {"shape|color": 0.08, ...},
                      "conflict_fraction": {"shape|color": 0.4, ...},   (share of measured steps with cos < 0)
                      "affinity":          {"shape->color": 0.003, ...}} (mean over the lookahead steps)

Both return {} when there is nothing to measure: an architecture without
shared parameters (soft sharing ties separate networks with a penalty), a
single task, or (for ``end_epoch``) no measured step in the epoch.

Cost with 3 tasks on the shapes CNN, every step measured
(``benchmarks/bench_train.py``): about 2.4x a plain step with exact cosines
(it was 4.5x before the measurement reused the training step's forward
pass, and 3.0x before the update reused the measured per-task gradients,
``TaskGradients``), 1.3x with features (most of it the lookahead,
amortised). The exact cosine cannot get much cheaper: T per-task backward
passes through the trunk are the floor, (F + T B) / (F + B) = 2.3x here
(forward F = 9 ms, backward B = 17 ms).

Measuring never changes training: the update built from the measured
per-task gradients, sum_t (d objective / d L_t) g_t, is the plain step's up
to rounding (no more: under Adam, whose first steps follow the gradient's
sign, two such runs drift apart as any reordering of a sum would make
them); measuring itself writes nothing to ``.grad``; the lookahead runs the
model functionally
(``torch.func.functional_call``) with copies of its buffers, so BatchNorm
statistics are untouched, and with the random state forked, so dropout
draws what training would have drawn next; the model's train/eval mode is
restored. ``after_step`` measures on its own forward pass, for use outside
the engine's loop.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from .weighting.jacobian import TaskGradients, jacobian_rows

# train.diagnostics_cosine: what the cosine is taken on, exact (shared parameters) or features (see above).
COSINES = ("exact", "features")

# Steps between two lookahead measurements (at least): see the module's docstring.
LOOKAHEAD_GAP = 10


def pair_key(a: str, b: str) -> str:
    return f"{a}|{b}"


def affinity_key(source: str, target: str) -> str:
    return f"{source}->{target}"


@contextmanager
def same_random_state(device: torch.device) -> Iterator[None]:
    """Run a block and put the random state back as it was.

    Every forward pass in here then draws the same dropout masks (those of
    the random state on entry), and training's own random stream is untouched.
    """
    devices = [] if device.type == "cpu" else [device]
    with torch.random.fork_rng(devices=devices, device_type=None if device.type == "cpu" else device.type):
        yield


def cosine_matrix(grads: torch.Tensor) -> torch.Tensor:
    """T x T cosine similarities between the rows of ``grads`` (T x n)."""
    unit = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def copied_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the model's buffers: BatchNorm updates its running statistics
    in place, even in a functional call, and the model's own must stay as
    training left them."""
    return {name: b.clone() for name, b in model.named_buffers()}


@torch.no_grad()
def lookahead_affinity(run: Any, x: torch.Tensor, y: dict[str, torch.Tensor], shared: list[str],
                       rows: list[torch.Tensor]) -> torch.Tensor:
    """Z[i, j] = Z(i->j) = 1 - L_j(theta_s - lr g_i) / L_j(theta_s), T x T.

    ``shared`` names the shared parameters and ``rows`` holds, for each, the
    T tasks' gradients (T x shape). Every forward pass here draws the same
    dropout masks and uses its own copy of the buffers.
    """
    tasks = list(run.specs)
    params = dict(run.model.named_parameters())
    buffers = copied_buffers(run.model)
    lr = run.optimizer.param_groups[0]["lr"]

    def losses_at(parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        with same_random_state(x.device):
            _, losses = run.task_losses(x, y, (parameters, buffers))
        return torch.stack([losses[t] for t in tasks])

    before = losses_at(params)
    after = torch.empty(len(tasks), len(tasks), device=before.device)
    for i in range(len(tasks)):
        stepped = dict(params)
        for name, row in zip(shared, rows):
            stepped[name] = params[name] - lr * row[i]
        after[i] = losses_at(stepped)
    return 1.0 - after / before.clamp_min(1e-12)


def shared_representation(seen: dict[str, torch.Tensor], tasks: list[str]) -> torch.Tensor | None:
    """The tensor that every task's own layers read first, if it is one and the same.

    ``seen`` maps each task to the input of the first of its own modules
    that ran (see ``Diagnostics.watching``). Hard sharing: the trunk's
    features z, for every task. MMoE (each task mixes the experts its own
    way) and cross-stitch (a column per task): different tensors, so None.
    """
    first = seen.get(tasks[0])
    if first is None or not first.requires_grad or any(seen.get(t) is not first for t in tasks):
        return None
    return first


class Diagnostics:
    """Measures gradient conflict and lookahead affinity during training.

    ``every`` is the engine's ``train.diagnostics_every`` (0 = off); the
    engine decides when to measure. The running sums over an epoch are
    the only state, with the step of the epoch's last lookahead.
    """

    def __init__(self, every: int, lookahead_gap: int = LOOKAHEAD_GAP, cosine: str = "exact"):
        if cosine not in COSINES:
            raise ValueError(f"cosine must be one of {', '.join(COSINES)}, got {cosine!r}.")
        self.every = every
        self.lookahead_gap = lookahead_gap
        self.cosine = cosine
        self.latest: dict[str, Any] = {}  # the last measured step's logs
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.lookaheads = 0
        self.last_lookahead: int | None = None
        self.cosine_sum: dict[str, float] = {}
        self.conflicts: dict[str, int] = {}
        self.affinity_sum: dict[str, float] = {}

    # ----- measuring --------------------------------------------------------
    @contextmanager
    def watching(self, model: torch.nn.Module, active: bool = True) -> Iterator[dict[str, torch.Tensor]]:
        """Within the block, record the input of the first module of each task's own that runs.

        Yields the dict ``{task: tensor}`` it fills (``shared_representation``
        reads it). Modules whose parameters all belong to one task are that
        task's own; a pre-forward hook sees their input. Inactive: no hooks.
        """
        seen: dict[str, torch.Tensor] = {}
        handles = []

        def recorder(task: str):
            def hook(module: torch.nn.Module, args: tuple) -> None:
                seen.setdefault(task, args[0])
            return hook

        if active:
            for task in getattr(model, "task_names", []):
                own = {id(p) for p in model.task_parameters(task)}
                for module in model.modules():
                    direct = list(module.parameters(recurse=False))
                    if direct and all(id(p) in own for p in direct):
                        handles.append(module.register_forward_pre_hook(recorder(task)))
        try:
            yield seen
        finally:
            for handle in handles:
                handle.remove()

    def measure(self, run: Any, x: torch.Tensor, y: dict[str, torch.Tensor], losses: dict[str, torch.Tensor],
                seen: dict[str, torch.Tensor], step: int, gradients: TaskGradients | None = None) -> dict[str, Any]:
        """Cosines (and, when due, affinities) from ``losses``, whose graph is still alive.

        ``seen`` is what ``watching`` recorded during their forward pass;
        ``step`` the number of the training step being measured;
        ``gradients`` the step's ``TaskGradients``, which the update then
        reuses (so measuring costs T backward passes, not T + 1). The logs
        are returned, kept in ``self.latest`` and added to the epoch's sums.
        """
        self.latest = {}
        if not run.model.has_shared_parameters or len(run.specs) < 2:
            return self.latest
        tasks = list(run.specs)
        if gradients is None:
            gradients = TaskGradients(losses, [p for p in run.model.parameters() if p.requires_grad])
        z = shared_representation(seen, tasks) if self.cosine == "features" else None
        lookahead = self.last_lookahead is None or step - self.last_lookahead >= self.lookahead_gap
        names = {id(p): name for name, p in run.model.named_parameters()}
        shared_ids = {id(p) for p in run.model.shared_parameters()}
        is_shared = [id(p) in shared_ids for p in gradients.params]
        shared = [names[id(p)] for p, s in zip(gradients.params, is_shared) if s]
        # The exact gradients run on the training step's own graph (no extra
        # forward pass) and the update reuses them; the features' cosine only
        # needs T passes through the small heads, to z.
        rows = [r for r, s in zip(gradients.rows(tasks), is_shared) if s] if (lookahead or z is None) else []
        if z is not None:
            grads = jacobian_rows([losses[t] for t in tasks], [z])[0].flatten(1)
        else:
            grads = torch.cat([r.flatten(1) for r in rows], dim=1)
        cosine = cosine_matrix(grads.detach().float())
        affinity = None
        if lookahead:
            affinity = lookahead_affinity(run, x, y, shared, [r.detach() for r in rows])
            self.last_lookahead = step
        self.latest = self.add(tasks, cosine, affinity)
        return self.latest

    def after_step(self, run: Any, x: torch.Tensor, y: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Measure on a forward pass of its own of the batch (x, y), at the current parameters.

        For use outside the engine's loop; it changes nothing (see the module's docstring).
        """
        if not run.model.has_shared_parameters or len(run.specs) < 2:
            self.latest = {}
            return self.latest
        was_training = run.model.training
        run.model.train()  # the losses training sees (batch statistics, dropout)
        try:
            state = (dict(run.model.named_parameters()), copied_buffers(run.model))
            with self.watching(run.model) as seen, same_random_state(x.device):
                _, losses = run.task_losses(x, y, state)
            return self.measure(run, x, y, losses, seen, step=run.step)
        finally:
            run.model.train(was_training)

    def add(self, tasks: list[str], cosine: torch.Tensor, affinity: torch.Tensor | None) -> dict[str, Any]:
        """Add one step's matrices to the epoch's sums; return its JSON logs."""
        cosine_values, affinity_values = cosine.tolist(), (affinity.tolist() if affinity is not None else None)
        logs: dict[str, Any] = {"cosine": {}}
        for i, a in enumerate(tasks):
            for j, b in enumerate(tasks[i + 1:], i + 1):
                c = cosine_values[i][j]
                logs["cosine"][pair_key(a, b)] = c
                self.cosine_sum[pair_key(a, b)] = self.cosine_sum.get(pair_key(a, b), 0.0) + c
                self.conflicts[pair_key(a, b)] = self.conflicts.get(pair_key(a, b), 0) + (c < 0)
        if affinity_values is not None:
            logs["affinity"] = {}
            for i, a in enumerate(tasks):
                for j, b in enumerate(tasks):
                    z = affinity_values[i][j]
                    logs["affinity"][affinity_key(a, b)] = z
                    self.affinity_sum[affinity_key(a, b)] = self.affinity_sum.get(affinity_key(a, b), 0.0) + z
            self.lookaheads += 1
        self.steps += 1
        return logs

    def end_epoch(self, run: Any) -> dict[str, Any]:
        """The epoch's means and conflict fractions, then start a new epoch."""
        if self.steps == 0:
            return {}
        n, k = self.steps, max(1, self.lookaheads)
        logs = {
            "tasks": list(run.specs),
            "steps": n,
            "affinity_steps": self.lookaheads,
            "cosine_mean": {key: v / n for key, v in self.cosine_sum.items()},
            "conflict_fraction": {key: v / n for key, v in self.conflicts.items()},
            "affinity": {key: v / k for key, v in self.affinity_sum.items()},
        }
        self.reset()
        return logs
