"""The stacked model: N runs' parameters stacked along a new first dimension, one step for all.

Each member stays a real ``TrainingRun``: built from its own config, so it
starts from the same initial weights as when trained alone. Members with
different tasks (single-task baselines next to the multi-task model) share
one *template* architecture holding a head for every task; a member's
missing heads are zeros that its loss never reads, so their gradient is
exactly zero and the optimiser (elementwise) leaves them alone.

Two ways to run the stacked model, with the same numbers:

grouped layers  (MLPs: hard sharing, single-task baselines, MMoE on vectors)
    The members' batches travel as one batch of N x b rows through the
    template's own forward code, its layers grouped (``grouped_layers``).
vmap            (anything else: CNNs on a GPU, cross-stitch units)
    One member's forward (``torch.func.functional_call``) vmapped
    (``torch.func.vmap``) over the stacked parameters.

``StackedMeters`` keeps every member's metric sums at once, so that the
packed loop (``loop.py``) reads them in one pass whatever the number of members.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch.func import functional_call, vmap

from ..data import Split
from ..engine import TrainingRun, make_optimizer, make_scheduler
from ..models import MultiTaskModel, build_model
from .grouped_layers import can_group, grouped_model

__all__ = ["PackedRuns", "StackedMeters"]


class PackedRuns:
    """N runs' parameters stacked along a new first dimension, and one step for all.

    Two ways to run the stacked model, the same numbers either way:
    ``grouped`` (``can_group``: MLPs) folds the members into the batch and
    runs the template's own forward with grouped layers; otherwise one
    member's forward is vmapped (``torch.func.vmap``) over the stack. The
    grouped model skips vmap's and ``functional_call``'s work on every
    operation (each is checked and rewritten for the stacked dimension on
    every call) and lets BatchNorm's kernel apply its own affine map: a
    step a third shorter (see the module's docstring).
    """

    def __init__(self, runs: list[TrainingRun], datasets: list, device: torch.device):
        self.started = time.perf_counter()  # for each member's "seconds"
        self.runs = runs
        self.device = device
        first = runs[0].config
        data = datasets[0]
        self.tasks = list(dict.fromkeys(t for run in runs for t in run.config.tasks))  # union, in order
        template_config = replace(first, tasks=tuple(self.tasks))
        self.template = runs[0].speed.prepare_model(
            build_model(template_config, [data.tasks[t] for t in self.tasks], data.input_kind,
                        data.input_shape).to(device))
        _template_fits(self.template, runs)
        self.speed = runs[0].speed
        self.loss_fns = {t: fn for run in runs for t, fn in run.loss_fns.items()}
        self.members_losses = vmap(self._losses)  # every member's T losses from N x b outputs: N x T
        stacks = _stacked_states(self.template, runs)
        self.grouped = can_group(self.template)
        if self.grouped:
            self.model = grouped_model(self.template, len(runs), stacks)
            self.params = dict(self.model.named_parameters())
            self.buffers = dict(self.model.named_buffers())
        else:
            self.model = self.template  # run through functional_call with the stacks
            self.params = {n: stacks[n].requires_grad_() for n, _ in self.template.named_parameters()}
            self.buffers = {n: stacks[n] for n, _ in self.template.named_buffers()}
        trunk_ids = {id(p) for p in self.template.trunk_parameters()}
        self.trunk_names = [n for n, p in self.template.named_parameters() if id(p) in trunk_ids]
        if any(run.weighting.parameters() for run in runs):
            raise ValueError("A packed member's weighting learns parameters of its own; train it alone.")
        # Every optimiser here is elementwise: each member's slice moves as it would alone.
        self.optimizer = make_optimizer(first, list(self.params.values()), runs[0].speed)
        self.scheduler = make_scheduler(first, self.optimizer)
        # Members may train on different datasets of one shape (synthetic data at
        # several correlations): source[k] is member k's, among the D distinct ones.
        distinct: dict[int, int] = {}
        self.source = torch.tensor([distinct.setdefault(id(d), len(distinct)) for d in datasets], device=device)
        self.splits = self._stacked_splits(list({id(d): d for d in datasets}.values()))

    def _stacked_splits(self, unique: list) -> dict[str, Split]:
        """Each split of the D distinct datasets, stacked: x is D x n x ..., y[t] is D x n."""
        max_samples = self.runs[0].config.train.max_samples
        splits = {}
        for name in ("train", "val", "test"):
            parts = [getattr(d, name) for d in unique]
            if name == "train" and max_samples:
                parts = [p.subset(max_samples) for p in parts]
            parts = [p.select_tasks(self.tasks).to(self.device) for p in parts]
            x = self.speed.prepare_inputs(torch.stack([p.x for p in parts]).flatten(0, 1)).unflatten(0, (len(parts), -1))
            splits[name] = Split(x, {t: torch.stack([p.y[t] for p in parts]) for t in self.tasks})
        return splits

    def batch(self, split: str, idx: torch.Tensor | None):
        """Member k's examples ``idx[k]`` (N x b) of ``split``; with idx None, the whole split.

        Returns x (N x b x ...), y ({task: N x b}) and whether one batch
        serves every member (one dataset, the whole split: then x is b x ...
        and y[t] is b).
        """
        data = self.splits[split]
        n = data.x.shape[1]
        if idx is None:
            if data.x.shape[0] == 1:
                return data.x[0], {t: v[0] for t, v in data.y.items()}, True
            idx = torch.arange(n, device=self.device).expand(len(self.runs), n)
        # Rows of the D datasets laid end to end: one index_select (a third of
        # the time of indexing with two index tensors) gathers every member's batch.
        rows = (self.source[:, None] * n + idx).reshape(-1)
        x = self.speed.prepare_inputs(data.x.flatten(0, 1).index_select(0, rows))
        y = {t: v.flatten(0, 1).index_select(0, rows).view(idx.shape) for t, v in data.y.items()}
        return x.view(*idx.shape, *x.shape[1:]), y, False

    def _losses(self, outputs: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> torch.Tensor:
        """One member's loss for every task of the union (T), from its outputs and targets."""
        return torch.stack([self.loss_fns[t](outputs[t], y[t]) for t in self.tasks])

    # One member's forward pass and losses; vmap runs it for every member at once.
    def _member(self, params, buffers, x, y):
        with self.speed.autocast():
            raw = functional_call(self.template, (params, buffers), (x,))
        outputs = {t: raw[t].float() for t in self.tasks}
        return outputs, self._losses(outputs, y)

    def forward(self, x: torch.Tensor, y: dict[str, torch.Tensor], shared_batch: bool):
        """Every member's outputs {task: N x b x ...} and losses (N x T, T: the union of tasks).

        ``x``, ``y``: a batch per member (N x b x ...), or with ``shared_batch`` one batch for all.
        """
        if self.grouped:
            return self._forward_grouped(x, y, shared_batch)
        batch_dim = None if shared_batch else 0
        member = vmap(self._member, in_dims=(0, 0, batch_dim, batch_dim), randomness="different")
        return member(self.params, self.buffers, x, y)

    def _forward_grouped(self, x: torch.Tensor, y: dict[str, torch.Tensor], shared_batch: bool):
        """``forward`` through the grouped model: the members' batches as one batch of N x b rows."""
        members = len(self.runs)
        if shared_batch:
            x = x.expand(members, *x.shape)
            y = {t: v.expand(members, *v.shape) for t, v in y.items()}
        b = x.shape[1]
        with self.speed.autocast():
            raw = self.model(x.reshape(members * b, *x.shape[2:]))
        outputs = {t: raw[t].float().reshape(members, b, *raw[t].shape[1:]) for t in self.tasks}
        return outputs, self.members_losses(outputs, y)

    def l1(self) -> torch.Tensor | float:
        """Every member's L1 penalty on its trunk, summed (as ``TrainingRun.regularisers``)."""
        weight = self.runs[0].config.reg.l1  # the same for all: part of pack_key
        if weight <= 0:
            return 0.0
        return weight * sum(self.params[n].abs().sum() for n in self.trunk_names)

    def write_back(self, k: int) -> None:
        """Copy member k's slice into its own model (for checkpoints and prediction)."""
        model = self.runs[k].model
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self.params[name][k])
            for name, b in model.named_buffers():
                b.copy_(self.buffers[name][k])

    def restore(self, k: int) -> None:
        """Copy member k's own model back into its slice: the reverse of ``write_back``.

        A member that has stopped gets zero gradients, yet the optimiser
        would still move its slice (Adam's momentum, weight decay) and its
        rows would still update BatchNorm's running averages; restoring it
        after every step keeps it frozen at the model it saved.
        """
        model = self.runs[k].model
        with torch.no_grad():
            for name, p in model.named_parameters():
                self.params[name][k].copy_(p)
            for name, b in model.named_buffers():
                self.buffers[name][k].copy_(b)


def _stacked_states(template: MultiTaskModel, runs: list[TrainingRun]) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the template: the members' own, stacked (N x ...).

    A member's missing entries (another task's head) are zeros: never read by its loss.
    """
    states = [run.model.state_dict() for run in runs]
    return {name: torch.stack([state.get(name, torch.zeros_like(like)).detach() for state in states])
            for name, like in template.state_dict().items()}


def _template_fits(template: MultiTaskModel, runs: list[TrainingRun]) -> None:
    """Every member's parameters must be the template's, same names and shapes."""
    shapes = {n: v.shape for n, v in template.state_dict().items()}
    for run in runs:
        for name, value in run.model.state_dict().items():
            if shapes.get(name) != value.shape:
                raise ValueError(f"Run {run.config.model.arch} with tasks {run.config.tasks} does not fit the "
                                 f"packed template ({name}); train it alone.")


class StackedMeters:
    """``TaskMeter``'s running sums for every member and task at once.

    One set of operations per task and batch, whatever the number of
    members; ``results`` hands each member's sums to a ``TaskMeter`` so that
    the metrics are computed exactly as for a lone run.
    """

    def __init__(self, packed: PackedRuns):
        self.packed = packed
        self.count = 0
        self.loss_sum: torch.Tensor | float = 0.0  # N x T
        self.sums: dict[str, dict[str, torch.Tensor | float]] = {t: {} for t in packed.tasks}  # task -> name -> N

    @torch.no_grad()
    def update(self, outputs: dict[str, torch.Tensor], y: dict[str, torch.Tensor], losses: torch.Tensor) -> None:
        """``outputs[t]``: N x b x ...; ``y[t]``: N x b, or b when every member saw the same batch."""
        b = next(iter(y.values())).shape[-1]
        self.count += b
        self.loss_sum = self.loss_sum + losses.detach().float() * b
        for t in self.packed.tasks:
            out, target = outputs[t], y[t]
            if target.dtype == torch.long:  # classification
                new = {"correct": (out.argmax(dim=-1) == target).sum(dim=-1)}
            else:
                err = out.squeeze(-1) - target
                new = {"abs_err": err.abs().sum(dim=-1), "sq_err": err.pow(2).sum(dim=-1),
                       "y_sum": target.sum(dim=-1), "y_sq_sum": target.pow(2).sum(dim=-1)}
            for name, value in new.items():
                self.sums[t][name] = self.sums[t].get(name, 0.0) + value

    def results(self) -> list[dict[str, dict[str, float]]]:
        """Each member's {task: metrics} for its own tasks."""
        out = []
        for k, run in enumerate(self.packed.runs):
            meters = run.new_meters()
            for t, meter in meters.items():
                meter.count = self.count
                meter.loss_sum = self.loss_sum[k, self.packed.tasks.index(t)]
                for name, value in self.sums[t].items():
                    setattr(meter, name, value[k] if value.dim() else value)
            out.append({t: meter.result() for t, meter in meters.items()})
        return out
