"""Packed training: runs on one dataset trained together as one stacked model.

A study trains a dozen small models on the same data: baselines, a
multi-task model, a few seeds each. One step of a small MLP is mostly fixed
costs (Python, dispatch, a few microseconds per tiny kernel), so training
the members one after another pays those costs N times. Here the N
members' parameters are stacked along a new first dimension and one step
trains all of them: N small matrix products become one batched product.

Two ways to run the stacked model, with the same numbers:

grouped layers  (MLPs: hard sharing, single-task baselines, MMoE on vectors)
    The members' batches travel as one batch of N x b rows and the
    template's own forward code runs on it, each ``nn.Linear`` replaced by a
    ``GroupedLinear`` (one ``torch.baddbmm`` over the N members' weights) and
    each BatchNorm by a ``GroupedBatchNorm`` that normalises every member's
    rows with that member's statistics.
vmap            (anything else: CNNs on a GPU, cross-stitch units)
    One member's forward (``torch.func.functional_call``) vmapped
    (``torch.func.vmap``) over the stacked parameters.

Measured (benchmarks/README.md, 2-core EPYC, 1 thread, the default
relatedness study: 36 hard/single MLPs in one group, 12 MMoEs in another):
with vmap alone the study trained 2.5x faster than its runs one by one. A
profile of the vmapped step showed its batched products already near the
machine's peak (85 of 102 GFLOP/s); the rest was vmap's and
``functional_call``'s work on every operation of every step (1.6 ms a step
for the hard group, 4.7 ms for MMoE's many small operations), BatchNorm's
affine map split into separate operations, evaluation passes of 40 MB of
activations (fresh pages from the system at every pass) and batches
gathered with two index tensors. Grouped layers cut a step by a third
(hard group 8.1 -> 5.4 ms, MMoE 11.6 -> 7.8 ms), evaluation in passes of
at most ``EVAL_ROWS`` rows with BatchNorm as one affine map by a third,
and one ``index_select`` gathers a batch 3x faster: the study now trains
about 3x faster than one by one, and ~20x faster than one
``python -m mtlcore train`` process per run.

Each member stays a real ``TrainingRun``: built from its own config, so it
starts from the same initial weights as when trained alone, draws its
batches from its own seeded order, and weights its losses with its own
method and sliders. Members with different tasks (single-task baselines
next to the multi-task model) share one *template* architecture holding a
head for every task; a member's missing heads are zeros that its loss never
reads, so their gradient is exactly zero and the optimiser (elementwise)
leaves them alone. Results therefore equal training one by one up to
floating-point rounding (``tests/test_speed.py``,
``tests/test_packed_speedups.py``); random draws inside a step (dropout,
``rlw``'s weights) come from one stream and match a lone run's in
distribution only.

Which runs can be packed (``pack_key``): the same dataset and settings
except the seed, the tasks, the loss weights, the dataset's options (the
synthetic data's correlation, say, as long as the splits keep their sizes
and the inputs their shape) and the weighting method, which must only
weight losses (a ``LossWeighting`` whose objective is the plain weighted
sum: static, equal, dwa, rlw; not uncertainty, which learns its weights);
no early stopping, no diagnostics, no architecture penalty, and losses
with one output per regression task (``losses.packs``: not gaussian_nll).
``pack_groups`` groups them, only where stacking pays
(``speed.stacking_pays``: not for CNNs on a CPU, where a stacked, grouped
convolution is slower than N plain ones).

    >>> from mtlcore.packed import fit_many
    >>> results = fit_many([config_a, config_b, config_c])   # FitResults, in order
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .calibration import calibrate_run
from .config import ExperimentConfig, validate
from .data import Split, load_dataset
from .devices import resolve_device
from .engine import (EVAL_BATCH, Callback, FitResult, TrainingRun, count_parameters, first_non_finite, fit,
                     diverged_message, make_optimizer, make_scheduler)
from .ensemble import test_outputs
from .losses import make_loss, packs as loss_packs
from .metrics import score_from_losses
from .models import MultiTaskModel, build_model
from .speed import stacking_pays
from .weighting.base import LossWeighting

__all__ = ["fit_many", "fit_packed", "pack_groups", "pack_key"]

# Rows of one stacked evaluation pass (N members x their rows). A pass over
# 36 members x 600 rows (~40 MB of activations) took ~1.5x as long as the
# same rows in passes of at most 8192: every pass got fresh pages from the
# system (thousands of page faults) and nothing stayed in the cache.
EVAL_ROWS = 8192


# ----- which runs go together ---------------------------------------------------------

def pack_key(config: ExperimentConfig) -> str | None:
    """Runs with the same key can be trained together; None: this run trains alone.

    The key is the config without what members may differ in: seed, tasks,
    loss weights, dataset options and (loss-only) weighting method.
    ``pack_groups`` also checks that the members' datasets have the same
    sizes and that their models fit one template.
    """
    from .models import ARCHITECTURES
    from .weighting import WEIGHTINGS

    try:
        validate(config)
    except ValueError:
        return None  # fit will say what is wrong
    method = WEIGHTINGS.get(config.weighting.method)
    arch = ARCHITECTURES.get(config.model.arch)
    if (config.train.patience or config.train.diagnostics_every or not issubclass(method, LossWeighting)
            or method.objective is not LossWeighting.objective or method.wants_losses_after_step
            or arch.penalty is not MultiTaskModel.penalty
            or not loss_packs(config.loss)  # e.g. gaussian_nll: two outputs per regression task
            or config.train.label_fraction < 1  # masked losses: fit's own step
            or not _tasks_pack(config)):  # e.g. reconstruction: a whole image per example
        return None
    neutral = replace(config, seed=0, tasks=(), loss=replace(config.loss, weights={}),
                      # a bagging member's own bootstrap rows are only its batches' order (epoch_order)
                      train=replace(config.train, bootstrap=False),
                      dataset=replace(config.dataset, seed=0, options={}),
                      weighting=replace(config.weighting, method="", options={}),
                      model=replace(config.model, arch=""))
    # The architecture counts by its forward pass: single is hard sharing with
    # one head (the same forward), so baselines pack with the multi-task model.
    return neutral.to_json() + arch.forward.__qualname__


def _tasks_pack(config: ExperimentConfig) -> bool:
    """Whether every task's loss reads outputs that packed training stacks (one number per regression task)."""
    from .data import dataset_info

    info = dataset_info(config.dataset.name)
    return all(make_loss(info.task(t), config.loss).packs for t in config.tasks)


def pack_groups(configs: Sequence[ExperimentConfig], device: torch.device | str | None = None,
                force: bool = False) -> list[list[int]]:
    """Indices of ``configs`` in groups to train together (``fit_packed``); singletons train alone.

    Groups keep the order of first appearance. ``force``: pack even where
    stacking would not pay (tests compare packed and lone results).
    """
    groups: dict[tuple, list[int]] = {}
    result: list[list[int]] = []
    for i, config in enumerate(configs):
        key = pack_key(config)
        if key is None:
            result.append([i])
        else:
            groups.setdefault((key, _data_shape(config)), []).append(i)
    for members in groups.values():
        if len(members) == 1 or not (force or _pays(configs[members[0]], device)):
            result += [[i] for i in members]
        elif _fit_one_template([configs[i] for i in members]):
            result.append(members)
        else:  # e.g. cross-stitch, whose units are T x T: members with the same tasks only
            by_tasks: dict[tuple[str, ...], list[int]] = {}
            for i in members:
                by_tasks.setdefault(configs[i].tasks, []).append(i)
            result += list(by_tasks.values())
    return sorted(result, key=lambda g: g[0])


def _data_of(config: ExperimentConfig):
    return load_dataset(config.dataset.name, seed=config.dataset.seed, **config.dataset.options)


def _shapes(config: ExperimentConfig, tasks: tuple[str, ...]) -> dict[str, torch.Size]:
    """Names and shapes of the parameters and buffers of ``config``'s model for ``tasks`` (built on meta: free)."""
    data = _data_of(config)
    with torch.device("meta"):
        model = build_model(replace(config, tasks=tasks), [data.tasks[t] for t in tasks], data.input_kind,
                            data.input_shape)
    return {name: value.shape for name, value in model.state_dict().items()}


def _fit_one_template(configs: list[ExperimentConfig]) -> bool:
    """Whether every member's model is part of the model for all their tasks (same names, same shapes)."""
    union = tuple(dict.fromkeys(t for c in configs for t in c.tasks))
    template = _shapes(configs[0], union)
    # Seeds and loss weights do not change a model's shape: one check per kind of member.
    kinds = {(c.model.arch, c.tasks, repr(sorted(c.dataset.options.items()))): c for c in configs}
    return all(template.get(name) == shape for c in kinds.values() for name, shape in _shapes(c, c.tasks).items())


def _data_shape(config: ExperimentConfig) -> tuple:
    """What members' datasets must share: split sizes and input shape (batches are stacked)."""
    data = _data_of(config)
    train = len(data.train) if not config.train.max_samples else min(len(data.train), config.train.max_samples)
    return train, len(data.val), len(data.test), tuple(data.input_shape)


def _pays(config: ExperimentConfig, device: torch.device | str | None) -> bool:
    device = resolve_device(config.device) if device is None else torch.device(device)
    data = _data_of(config)
    model = build_model(config, [data.tasks[t] for t in config.tasks], data.input_kind, data.input_shape)
    return stacking_pays(device, model)


def fit_many(configs: Sequence[ExperimentConfig], callbacks: Sequence[Sequence[Callback]] | None = None,
             device: torch.device | str | None = None) -> list[FitResult]:
    """Train every config, packed where that pays; results in the order of ``configs``.

    ``callbacks[i]`` are config i's callbacks (as for ``fit``).
    """
    callbacks = callbacks or [() for _ in configs]
    results: list[FitResult | None] = [None] * len(configs)
    for group in pack_groups(configs, device):
        if len(group) == 1:
            results[group[0]] = fit(configs[group[0]], list(callbacks[group[0]]), device=device)
        else:
            packed = fit_packed([configs[i] for i in group], [callbacks[i] for i in group], device)
            for i, result in zip(group, packed):
                results[i] = result
    return results  # type: ignore[return-value]


# ----- grouped layers: N members' layers as one ---------------------------------------
#
# The members' batches travel as one batch of N x b rows, member after member
# (member k owns rows k*b to k*b + b - 1). A layer that holds weights is
# replaced by a grouped layer that sends each member's rows through that
# member's weights; a layer without weights (ReLU, Flatten, max-pooling,
# dropout) treats every row alike anyway. The model's own forward code runs
# unchanged, on N times the batch.

class GroupedLinear(nn.Module):
    """N members' ``nn.Linear`` layers side by side: one batched matrix product instead of N small ones.

    ``weight`` is N x out x in and ``bias`` N x out (stacked members'
    weights). Rows keep any middle dimensions (MMoE's experts' outputs).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_member = x.reshape(self.weight.shape[0], -1, x.shape[-1])  # N x rows x in
        weight = self.weight.transpose(1, 2)
        if self.bias is None:
            out = torch.bmm(per_member, weight)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), per_member, weight)
        return out.reshape(*x.shape[:-1], out.shape[-1])


class GroupedBatchNorm(nn.Module):
    """N members' BatchNorm layers (Ioffe & Szegedy, ICML 2015), each normalising its own member's rows.

    The rows are regrouped so that member k's channel c becomes channel
    k*C + c of one ordinary batch norm over b rows: each member gets its own
    statistics and running averages, exactly as alone, from one kernel.
    (Normalising N x b rows together would mix the members' statistics.)
    """

    def __init__(self, like: nn.modules.batchnorm._BatchNorm, members: int, tensors: dict[str, torch.Tensor]):
        super().__init__()
        self.members, self.momentum, self.eps = members, like.momentum, like.eps
        self.track_running_stats = like.track_running_stats
        self.weight = nn.Parameter(tensors["weight"]) if "weight" in tensors else None
        self.bias = nn.Parameter(tensors["bias"]) if "bias" in tensors else None
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, tensors.get(name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As nn.BatchNorm's forward; every member has seen as many batches.
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative average
                factor = 1.0 / float(self.num_batches_tracked[0])
        batch_statistics = self.training or self.running_mean is None
        if not batch_statistics:
            return self._normalise_with_running_averages(x)
        keep = not self.training or self.track_running_stats
        b = x.shape[0] // self.members
        channels_of_all = x.reshape(self.members, b, *x.shape[1:]).transpose(0, 1).reshape(b, -1, *x.shape[2:])
        out = F.batch_norm(channels_of_all, _flat(self.running_mean if keep else None),
                           _flat(self.running_var if keep else None), _flat(self.weight), _flat(self.bias),
                           batch_statistics, factor, self.eps)
        return out.reshape(b, self.members, *x.shape[1:]).transpose(0, 1).reshape(x.shape)

    def _normalise_with_running_averages(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation: a fixed affine map per member and channel, with no regrouping of the rows.

        x * scale + shift with scale = weight / sqrt(var + eps) and shift =
        bias - mean * scale: what BatchNorm's own kernel computes (the same
        numbers), without two copies of the activations (hard sharing's
        evaluation pass 1.6x faster).
        """
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        per_channel = (self.members, 1, -1, *(1,) * (x.dim() - 2))  # N x 1 x C x 1...
        rows = x.reshape(self.members, -1, *x.shape[1:])
        return torch.addcmul(shift.view(per_channel), rows, scale.view(per_channel)).reshape(x.shape)


def _flat(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """N x C -> N*C, a view (the running averages are updated in place through it)."""
    return None if tensor is None else tensor.reshape(-1)


def _grouped_linear(layer: nn.Linear, members: int, tensors: dict[str, torch.Tensor]) -> GroupedLinear:
    return GroupedLinear(tensors["weight"], tensors.get("bias"))


# Each layer type with a grouped version, and how to build it from (layer,
# members, its stacked tensors by name). Exact types: a subclass may have a
# forward of its own.
GROUPED_LAYERS = {nn.Linear: _grouped_linear, nn.BatchNorm1d: GroupedBatchNorm, nn.BatchNorm2d: GroupedBatchNorm,
                  nn.BatchNorm3d: GroupedBatchNorm}


def _holds_tensors(layer: nn.Module) -> bool:
    """Whether ``layer`` itself (not its children) has parameters or buffers."""
    return any(True for _ in layer.parameters(recurse=False)) or any(True for _ in layer.buffers(recurse=False))


def can_group(model: nn.Module) -> bool:
    """Whether every layer of ``model`` that holds weights or buffers has a grouped version.

    True for MLP trunks and heads, hence hard sharing, single-task models
    and MMoE on vector data; convolutions and cross-stitch units are stacked
    with ``vmap`` instead. Grouping assumes that the model's forward treats
    the rows of a batch independently except in BatchNorm, as every
    architecture here does (``tests/test_packed_speedups.py`` compares
    packed and lone results).
    """
    return all(type(m) in GROUPED_LAYERS for m in model.modules() if _holds_tensors(m))


def grouped_model(template: nn.Module, members: int, stacked: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``template`` whose layers are grouped, holding the ``stacked`` tensors (by their names)."""
    model = copy.deepcopy(template)
    for name, layer in template.named_modules():
        build = GROUPED_LAYERS.get(type(layer))
        if build is not None:
            prefix = f"{name}."
            own = {key[len(prefix):]: value for key, value in stacked.items()
                   if key.startswith(prefix) and "." not in key[len(prefix):]}
            model.set_submodule(name, build(layer, members, own))
    return model


# ----- the stacked model --------------------------------------------------------------

@dataclass
class Member:
    """One packed run and its bookkeeping."""

    run: TrainingRun
    callbacks: list[Callback]
    status: str = "running"  # running, finished, cancelled, diverged
    message: str = ""
    best_score: float = math.inf
    best_epoch: int = 0
    result: FitResult | None = None  # set when it ends (a stopped member's at once)


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


# ----- the loop -----------------------------------------------------------------------

def fit_packed(configs: Sequence[ExperimentConfig], callbacks: Sequence[Sequence[Callback]] | None = None,
               device: torch.device | str | None = None) -> list[FitResult]:
    """Train ``configs`` (one ``pack_key``) together; one FitResult per config, in order.

    Callbacks see each member as ``fit`` would show it: a ``TrainingRun``
    (its model updated at every epoch end), step logs every
    ``train.log_every`` steps, epoch logs, and the end.
    """
    started = time.perf_counter()
    configs = [validate(c) for c in configs]
    keys = {pack_key(c) for c in configs}
    if len(keys) != 1 or None in keys:
        raise ValueError("fit_packed needs configs that pack together (see pack_key); use fit_many.")
    first = configs[0]
    device = resolve_device(first.device) if device is None else torch.device(device)
    datasets = [_data_of(c) for c in configs]
    runs = [TrainingRun(c, d, device) for c, d in zip(configs, datasets)]
    packed = PackedRuns(runs, datasets, device)
    packed.started = started  # a member's "seconds" count from here, as fit's count from its start
    members = [Member(run, list(cbs)) for run, cbs in zip(runs, callbacks or [() for _ in configs])]
    for m in members:
        for cb in m.callbacks:
            cb.on_fit_start(m.run)

    cfg = first.train
    n = packed.splits["train"].x.shape[1]
    step = 0  # steps taken by the pack (a member that stopped early has fewer)
    for epoch in range(1, cfg.epochs + 1):
        active = [m for m in members if m.status == "running"]
        if not active:
            break
        for m in active:
            m.run.epoch = epoch
        meters = StackedMeters(packed)
        # Each member's own generator, as fit draws it: the same batches as alone.
        # (a bagging member's permutes its bootstrap rows: engine.TrainingRun.epoch_order).
        orders = torch.stack([m.run.epoch_order().to(device) for m in members])  # N x n
        packed.model.train()
        for start in range(0, n, cfg.batch_size):
            idx = orders[:, start:start + cfg.batch_size]  # N x b
            if idx.shape[1] < 2:
                break  # a last batch of one sample: BatchNorm cannot normalise it (as fit)
            for m in members:
                if m.callbacks and m.status == "running" and any(cb.should_stop() for cb in m.callbacks):
                    _stop(packed, members, m, "cancelled",
                          f"Cancelled at step {m.run.step} (epoch {epoch}).")
            if all(m.status != "running" for m in members):
                break
            x, y, _ = packed.batch("train", idx)
            losses, outputs, weights = _train_step(packed, members, x, y)
            meters.update(outputs, y, losses)
            for m in members:
                if m.status == "running":
                    m.run.step += 1
            step += 1
            if step % cfg.log_every == 0:
                _log_step(packed, members, losses, weights, epoch)
        if any(m.status == "running" for m in members):
            # Not when every member stopped before this epoch's first step: there is no epoch to close.
            _end_epoch(packed, members, meters, epoch)

    finishing = [k for k, m in enumerate(members) if m.status == "running"]
    for k in finishing:
        members[k].status = "finished"
        packed.write_back(k)
    if finishing:
        evaluations = {name: _evaluate(packed, name) for name in ("val", "test")}
        for k in finishing:
            _report_end(packed, members[k], {name: evaluations[name][k] for name in evaluations})
    return [m.result for m in members]


def _report_end(packed: PackedRuns, member: Member, evaluation: dict[str, Any] | None) -> None:
    """Member's FitResult, as ``fit`` would give it, handed to its callbacks' ``on_fit_end``.

    ``evaluation``: its {"val": ..., "test": ...} metrics (None when it diverged).
    """
    run = member.run
    seconds = round(time.perf_counter() - packed.started, 3)
    summary: dict[str, Any] = {
        "status": member.status, "epochs": run.epoch, "steps": run.step, "best_epoch": member.best_epoch,
        "device": str(run.device), "speed": run.speed.describe(), "seconds": seconds, "packed": len(packed.runs),
        "tasks": {t: spec.as_dict() for t, spec in run.specs.items()},
        "parameters": count_parameters(run.model),
    }
    if evaluation is not None:
        summary.update(evaluation)
        calibrate_run(run, summary)  # each member's own model, as fit does
        if run.config.train.bootstrap:  # an ensemble member, as fit keeps it
            summary["test_outputs"] = test_outputs(run)
    summary["message"] = member.message or {"finished": f"Finished {run.epoch} epochs ({run.step} steps)."}.get(
        member.status, "")
    member.result = FitResult(member.status, summary["message"], summary, run)
    for cb in member.callbacks:
        cb.on_fit_end(run, member.result)


def _train_step(packed: PackedRuns, members: list[Member], x, y):
    """One optimisation step for every running member; returns N x T losses, outputs, logged weights.

    Each member's objective is its weighting's  sum_t u_t w_t L_t  (pack_key
    admits only methods with that objective and weights that are numbers,
    not functions of the parameters), so all of them are one weighted sum
    of the N x T losses; a member's other tasks and a stopped member weigh 0.
    """
    packed.optimizer.zero_grad(set_to_none=True)
    outputs, losses = packed.forward(x, y, shared_batch=False)
    column = {t: j for j, t in enumerate(packed.tasks)}
    scale = [[0.0] * len(packed.tasks) for _ in members]
    weights = []
    for k, (m, row) in enumerate(zip(members, losses.detach().unbind(0))):
        if m.status != "running":
            weights.append({})
            continue
        weighting, tasks = m.run.weighting, m.run.config.tasks
        w = weighting.weights({t: row[column[t]] for t in tasks})
        logged = {t: weighting.user_weights[t] * float(w[t]) for t in tasks}
        for t, value in logged.items():
            scale[k][column[t]] = value
        weights.append(logged)
    total = (torch.tensor(scale, device=losses.device) * losses).sum() + packed.l1()
    total.backward()
    packed.optimizer.step()
    for k, m in enumerate(members):
        if m.status not in ("running", "diverged"):
            packed.restore(k)  # the optimiser moved it on zero gradients: put it back
    return losses, outputs, weights


def _log_step(packed: PackedRuns, members: list[Member], losses: torch.Tensor, weights, epoch: int) -> None:
    """Each running member's step log, from one read of the N x T losses."""
    values = losses.detach().tolist()
    for k, m in enumerate(members):
        if m.status != "running":
            continue
        run = m.run
        loss = {t: values[k][packed.tasks.index(t)] for t in run.config.tasks}
        bad = first_non_finite(loss)
        if bad is not None:
            _stop(packed, members, m, "diverged", diverged_message(run.config, bad[0], bad[1], run.step))
            continue
        if not m.callbacks:
            continue  # checked for divergence; no one to tell
        logs = {"step": run.step, "epoch": epoch, "progress": run.step / run.total_steps, "loss": loss,
                "weight": weights[k]}
        for cb in m.callbacks:
            cb.on_step_end(run, logs)


def _stop(packed: PackedRuns, members: list[Member], member: Member, status: str, message: str) -> None:
    """Member ends here: its weights are frozen into its own model, and its result is reported now.

    Its metrics are those of the model it saves (its own model, evaluated
    alone), and its callbacks hear of its end at once rather than when the
    whole group ends: a worker then has its result even if the group fails
    or is shut down later. From here on ``_train_step`` keeps its slice of
    the stacked model frozen.
    """
    member.status, member.message = status, message
    evaluation = None
    if status != "diverged":
        packed.write_back(members.index(member))
        evaluation = {name: member.run.evaluate(name) for name in ("val", "test")}
    _report_end(packed, member, evaluation)


@torch.no_grad()
def _evaluate(packed: PackedRuns, split: str) -> list[dict[str, dict[str, float]]]:
    """Loss and metrics of every member on ``split`` (eval mode), all members in each pass."""
    packed.model.eval()
    meters = StackedMeters(packed)
    x_all, y_all, shared = packed.batch(split, None)
    n = x_all.shape[0 if shared else 1]
    # At most EVAL_ROWS rows in a pass, all members together: activations that stay in the cache.
    size = max(1, min(EVAL_BATCH, EVAL_ROWS // len(packed.runs)))
    for start in range(0, n, size):
        part = slice(start, start + size)
        x = x_all[part] if shared else x_all[:, part]
        y = {t: (v[part] if shared else v[:, part]) for t, v in y_all.items()}
        outputs, losses = packed.forward(x, y, shared_batch=shared)
        meters.update(outputs, y, losses)
    packed.model.train()
    return meters.results()


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


def _end_epoch(packed: PackedRuns, members: list[Member], meters: StackedMeters, epoch: int) -> None:
    train = meters.results()
    val = _evaluate(packed, "val")
    if packed.scheduler is not None:
        packed.scheduler.step()
    for k, m in enumerate(members):
        if m.status != "running":
            continue
        run = m.run
        train_metrics = train[k]
        bad = first_non_finite({t: v["loss"] for t, v in train_metrics.items()})
        if bad is not None:
            _stop(packed, members, m, "diverged", diverged_message(run.config, bad[0], bad[1], run.step))
            continue
        run.weighting.end_epoch(epoch, {t: v["loss"] for t, v in train_metrics.items()})
        logs = {"epoch": epoch, "step": run.step, "lr": packed.optimizer.param_groups[0]["lr"],
                "train": train_metrics, "val": val[k]}
        if m.callbacks:  # they may checkpoint the run; without them no one sees the model before the end
            packed.write_back(k)
        for cb in m.callbacks:
            cb.on_epoch_end(run, logs)
        score = score_from_losses({t: v["loss"] for t, v in val[k].items()}, dict(run.config.loss.weights))
        if score < m.best_score - 1e-6:
            m.best_score, m.best_epoch = score, epoch
