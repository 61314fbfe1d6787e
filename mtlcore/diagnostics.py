"""Live diagnostics: do the tasks fight over the shared parameters?

Every ``train.diagnostics_every`` steps the engine calls
``Diagnostics.after_step`` on the batch it just trained on, and once per
epoch ``Diagnostics.end_epoch``. Two measurements, both on the *shared*
parameters theta_s (``model.shared_parameters()``):

Gradient conflict (Yu et al., NeurIPS 2020, "Gradient Surgery for
Multi-Task Learning", the PCGrad paper). With g_i = grad_theta_s L_i,

    cos(i, j) = g_i . g_j / (||g_i|| ||g_j||)

and the pair *conflicts* when cos < 0: a step that helps one task then
hurts the other (to first order).

Lookahead task affinity (Fifty, Amid, Zhao, Yu, Anil & Finn, NeurIPS 2021,
"Efficiently Identifying Task Groupings for Multi-Task Learning"). Take an
SGD step on task i alone, theta_s' = theta_s - lr * g_i (heads unchanged),
and see how task j's loss on the same batch changes:

    Z(i->j) = 1 - L_j(theta_s') / L_j(theta_s)

Z > 0: training on i helps j; Z < 0: it hurts. lr is the optimiser's
current learning rate (the paper's lookahead is a plain SGD step, whatever
the optimiser). Z(i->i) is how much a step helps the task itself.

The logs are plain JSON. Pairs are keyed ``"a|b"`` for tasks a, b in the
order of ``tasks`` (a before b); directed affinities ``"i->j"`` for every
ordered pair including i = j, so the app can draw T x T heatmaps:

    after_step  {"cosine":   {"shape|color": 0.12, ...},
                 "affinity": {"shape->color": 0.004, "shape->shape": 0.02, ...}}
    end_epoch   {"tasks": ["shape", "color", ...], "steps": 5,
                 "cosine_mean":       {"shape|color": 0.08, ...},
                 "conflict_fraction": {"shape|color": 0.4, ...},   (share of measured steps with cos < 0)
                 "affinity":          {"shape->color": 0.003, ...}} (mean over measured steps)

Both return {} when there is nothing to measure: an architecture without
shared parameters (soft sharing ties separate networks with a penalty), a
single task, or (for ``end_epoch``) no measured step in the epoch.

Cost: one forward pass and the T task gradients through that one graph
(``weighting/jacobian.py``: a single batched backward on an accelerator),
plus T forward passes without gradients for the lookaheads: about
4 to 5 training steps' worth on the CPU (``benchmarks/bench_diagnostics.py``),
so measure every k-th step. Measuring never changes training: the model
is run functionally (``torch.func.functional_call``) with copies of its
buffers, so BatchNorm statistics are untouched; the random state is forked,
so dropout draws what training would have drawn next; nothing is written
to ``.grad``; and the model's train/eval mode is restored.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch.func import functional_call

from .weighting.jacobian import jacobian_rows


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


class Diagnostics:
    """Measures gradient conflict and lookahead affinity during training.

    ``every`` is the engine's ``train.diagnostics_every`` (0 = off); the
    engine decides when to call. The running sums over an epoch are the
    only state.
    """

    def __init__(self, every: int):
        self.every = every
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.cosine_sum: dict[str, float] = {}
        self.conflicts: dict[str, int] = {}
        self.affinity_sum: dict[str, float] = {}

    # ----- measuring --------------------------------------------------------
    def measure(self, run: Any, x: torch.Tensor, y: dict[str, torch.Tensor]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Task names, their T x T cosine matrix and T x T affinity matrix Z[i, j] = Z(i->j)."""
        model = run.model
        tasks = list(run.specs)
        params = dict(model.named_parameters())
        shared_ids = {id(p) for p in model.shared_parameters()}
        shared = [name for name, p in params.items() if id(p) in shared_ids and p.requires_grad]
        # Copies: BatchNorm updates its running statistics in place, even in a
        # functional call; the model's own must stay as training left them.
        buffers = {name: b.clone() for name, b in model.named_buffers()}

        def task_losses(parameters: dict[str, torch.Tensor]) -> list[torch.Tensor]:
            with same_random_state(x.device):
                outputs = functional_call(model, (parameters, buffers), (x,))
            return [run.loss_fns[t](outputs[t], y[t]) for t in tasks]

        losses = task_losses(params)
        rows = jacobian_rows(losses, [params[name] for name in shared])  # per parameter: T x shape
        grads = torch.cat([r.flatten(1) for r in rows], dim=1).detach()
        before = torch.stack(losses).detach()
        lr = run.optimizer.param_groups[0]["lr"]
        after = torch.empty(len(tasks), len(tasks), device=before.device)
        with torch.no_grad():
            for i in range(len(tasks)):
                stepped = dict(params)
                for name, row in zip(shared, rows):
                    stepped[name] = params[name] - lr * row[i]
                after[i] = torch.stack(task_losses(stepped))
        affinity = 1.0 - after / before.clamp_min(1e-12)
        return tasks, cosine_matrix(grads), affinity

    # ----- engine hooks -----------------------------------------------------
    def after_step(self, run: Any, x: torch.Tensor, y: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Cosines and affinities on this batch; also added to the epoch's sums."""
        if not run.model.has_shared_parameters or len(run.specs) < 2:
            return {}
        was_training = run.model.training
        run.model.train()  # the losses training sees (batch statistics, dropout)
        try:
            tasks, cosine, affinity = self.measure(run, x, y)
        finally:
            run.model.train(was_training)
        logs: dict[str, Any] = {"cosine": {}, "affinity": {}}
        for i, a in enumerate(tasks):
            for j, b in enumerate(tasks):
                z = float(affinity[i, j])
                logs["affinity"][affinity_key(a, b)] = z
                self.affinity_sum[affinity_key(a, b)] = self.affinity_sum.get(affinity_key(a, b), 0.0) + z
                if i < j:
                    c = float(cosine[i, j])
                    logs["cosine"][pair_key(a, b)] = c
                    self.cosine_sum[pair_key(a, b)] = self.cosine_sum.get(pair_key(a, b), 0.0) + c
                    self.conflicts[pair_key(a, b)] = self.conflicts.get(pair_key(a, b), 0) + (c < 0)
        self.steps += 1
        return logs

    def end_epoch(self, run: Any) -> dict[str, Any]:
        """The epoch's means and conflict fractions, then start a new epoch."""
        if self.steps == 0:
            return {}
        n = self.steps
        logs = {
            "tasks": list(run.specs),
            "steps": n,
            "cosine_mean": {k: v / n for k, v in self.cosine_sum.items()},
            "conflict_fraction": {k: v / n for k, v in self.conflicts.items()},
            "affinity": {k: v / n for k, v in self.affinity_sum.items()},
        }
        self.reset()
        return logs
