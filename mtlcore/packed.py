"""Packed training: runs on one dataset trained together as one stacked model.

A study trains a dozen small models on the same data: baselines, a
multi-task model, a few seeds each. One step of a small MLP is mostly fixed
costs (Python, dispatch, a few microseconds per tiny kernel), so training
the members one after another pays those costs N times. Here their
parameters are stacked (``torch.func.stack_module_state``) and one vmapped
step (``torch.func.vmap``) trains all of them: N small matrix products
become one batched product.

Each member stays a real ``TrainingRun``: built from its own config, so it
starts from the same initial weights as when trained alone, draws its
batches from its own seeded order, and weights its losses with its own
method and sliders. Members with different tasks (single-task baselines
next to the multi-task model) share one *template* architecture holding a
head for every task; a member's missing heads are zeros that its loss never
reads, so their gradient is exactly zero and the optimiser (elementwise)
leaves them alone. Results therefore equal training one by one up to
floating-point rounding (``tests/test_speed.py``); random draws inside a
step (dropout, ``rlw``'s weights) come from one stream and match a lone
run's in distribution only.

Which runs can be packed (``pack_key``): the same dataset and settings
except the seed, the tasks, the loss weights, the dataset's options (the
synthetic data's correlation, say, as long as the splits keep their sizes
and the inputs their shape) and the weighting method, which must only weight losses (a ``LossWeighting`` whose objective
is the plain weighted sum: static, equal, dwa, rlw; not uncertainty, which
learns its weights); no early stopping, no
diagnostics, no architecture penalty. ``pack_groups`` groups them, only
where stacking pays (``speed.stacking_pays``: not for CNNs on a CPU, where
a stacked, grouped convolution is slower than N plain ones).

    >>> from mtlcore.packed import fit_many
    >>> results = fit_many([config_a, config_b, config_c])   # FitResults, in order
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch
from torch.func import functional_call, vmap

from .config import ExperimentConfig, validate
from .data import Split, load_dataset
from .devices import resolve_device
from .engine import (DIVERGED_MESSAGE, EVAL_BATCH, Callback, FitResult, TrainingRun, first_non_finite, fit,
                     make_optimizer, make_scheduler)
from .metrics import score_from_losses
from .models import MultiTaskModel, build_model
from .speed import stacking_pays
from .weighting.base import LossWeighting

__all__ = ["fit_many", "fit_packed", "pack_groups", "pack_key"]


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
            or method.objective is not LossWeighting.objective or arch.penalty is not MultiTaskModel.penalty):
        return None
    neutral = replace(config, seed=0, tasks=(), loss=replace(config.loss, weights={}),
                      dataset=replace(config.dataset, seed=0, options={}),
                      weighting=replace(config.weighting, method="", options={}),
                      model=replace(config.model, arch=""))
    # The architecture counts by its forward pass: single is hard sharing with
    # one head (the same forward), so baselines pack with the multi-task model.
    return neutral.to_json() + arch.forward.__qualname__


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
    return all(template.get(name) == shape for c in configs for name, shape in _shapes(c, c.tasks).items())


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


class PackedRuns:
    """N runs' parameters stacked along a new first dimension, and one step for all."""

    def __init__(self, runs: list[TrainingRun], datasets: list, device: torch.device):
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
        # A member's missing entries (another task's head) are zeros: never read by its loss.
        states = [run.model.state_dict() for run in runs]

        def stacked(name: str, like: torch.Tensor) -> torch.Tensor:
            return torch.stack([state.get(name, torch.zeros_like(like)).detach() for state in states])

        self.params = {n: stacked(n, p).requires_grad_() for n, p in self.template.named_parameters()}
        self.buffers = {n: stacked(n, b) for n, b in self.template.named_buffers()}
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

        Returns x, y and whether one batch serves every member (one dataset, the same examples).
        """
        data = self.splits[split]
        if idx is None:
            if data.x.shape[0] == 1:
                return data.x[0], {t: v[0] for t, v in data.y.items()}, True
            return data.x[self.source], {t: v[self.source] for t, v in data.y.items()}, False
        rows = self.source[:, None]
        return data.x[rows, idx], {t: v[rows, idx] for t, v in data.y.items()}, False

    # One member's forward pass and losses; vmap runs it for every member at once.
    def _member(self, params, buffers, x, y):
        with self.speed.autocast():
            raw = functional_call(self.template, (params, buffers), (x,))
        outputs = {t: raw[t].float() for t in self.tasks}
        return outputs, torch.stack([self.loss_fns[t](outputs[t], y[t]) for t in self.tasks])

    def forward(self, x: torch.Tensor, y: dict[str, torch.Tensor], shared_batch: bool):
        """Every member's outputs {task: N x b x ...} and losses (N x T, T: the union of tasks).

        ``x``, ``y``: a batch per member (N x b x ...), or with ``shared_batch`` one batch for all.
        """
        batch_dim = None if shared_batch else 0
        member = vmap(self._member, in_dims=(0, 0, batch_dim, batch_dim), randomness="different")
        return member(self.params, self.buffers, x, y)

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
        orders = [torch.randperm(n, generator=m.run.generator).to(device) for m in members]
        packed.template.train()
        for start in range(0, n, cfg.batch_size):
            if orders[0][start:start + cfg.batch_size].numel() < 2:
                break  # a last batch of one sample: BatchNorm cannot normalise it (as fit)
            for m in members:
                if m.status == "running" and any(cb.should_stop() for cb in m.callbacks):
                    _stop(packed, members, m, "cancelled",
                          f"Cancelled at step {m.run.step} (epoch {epoch}).")
            if all(m.status != "running" for m in members):
                break
            idx = torch.stack([order[start:start + cfg.batch_size] for order in orders])  # N x b
            x, y, _ = packed.batch("train", idx)
            losses, outputs, weights = _train_step(packed, members, x, y)
            meters.update(outputs, y, losses)
            for m in members:
                if m.status == "running":
                    m.run.step += 1
            step += 1
            if step % cfg.log_every == 0:
                _log_step(packed, members, losses, weights, epoch)
        _end_epoch(packed, members, meters, epoch)

    for k, m in enumerate(members):
        if m.status == "running":
            m.status = "finished"
            packed.write_back(k)
    evaluations = {name: _evaluate(packed, name) for name in ("val", "test")}
    out = []
    seconds = round(time.perf_counter() - started, 3)
    for k, m in enumerate(members):
        run = m.run
        summary: dict[str, Any] = {
            "status": m.status, "epochs": run.epoch, "steps": run.step, "best_epoch": m.best_epoch,
            "device": str(run.device), "speed": run.speed.describe(), "seconds": seconds, "packed": len(members),
            "tasks": {t: spec.as_dict() for t, spec in run.specs.items()},
        }
        if m.status != "diverged":
            summary["val"] = evaluations["val"][k]
            summary["test"] = evaluations["test"][k]
        summary["message"] = m.message or {"finished": f"Finished {run.epoch} epochs ({run.step} steps)."}.get(m.status, "")
        result = FitResult(m.status, summary["message"], summary, run)
        for cb in m.callbacks:
            cb.on_fit_end(run, result)
        out.append(result)
    return out


def _train_step(packed: PackedRuns, members: list[Member], x, y):
    """One optimisation step for every running member; returns N x T losses, outputs, logged weights.

    Each member's objective is its weighting's  sum_t u_t w_t L_t  (pack_key
    admits only methods with that objective and weights that are numbers,
    not functions of the parameters), so all of them are one weighted sum
    of the N x T losses; a member's other tasks and a stopped member weigh 0.
    """
    packed.optimizer.zero_grad(set_to_none=True)
    outputs, losses = packed.forward(x, y, shared_batch=False)
    detached = losses.detach()
    scale = [[0.0] * len(packed.tasks) for _ in members]
    weights = []
    for k, m in enumerate(members):
        if m.status != "running":
            weights.append({})
            continue
        weighting = m.run.weighting
        w = weighting.weights({t: detached[k, packed.tasks.index(t)] for t in m.run.config.tasks})
        logged = {t: weighting.user_weights[t] * float(w[t]) for t in m.run.config.tasks}
        for t, value in logged.items():
            scale[k][packed.tasks.index(t)] = value
        weights.append(logged)
    total = (torch.tensor(scale, device=losses.device) * losses).sum() + packed.l1()
    total.backward()
    packed.optimizer.step()
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
            _stop(packed, members, m, "diverged", DIVERGED_MESSAGE.format(
                task=bad[0], value=bad[1], step=run.step, lr=run.config.optim.lr / 10))
            continue
        logs = {"step": run.step, "epoch": epoch, "progress": run.step / run.total_steps, "loss": loss,
                "weight": weights[k]}
        for cb in m.callbacks:
            cb.on_step_end(run, logs)


def _stop(packed: PackedRuns, members: list[Member], member: Member, status: str, message: str) -> None:
    """Member ends here: its weights are frozen into its own model."""
    member.status, member.message = status, message
    if status != "diverged":
        packed.write_back(members.index(member))


@torch.no_grad()
def _evaluate(packed: PackedRuns, split: str) -> list[dict[str, dict[str, float]]]:
    """Loss and metrics of every member on ``split`` (eval mode), one vmapped pass per batch."""
    packed.template.eval()
    meters = StackedMeters(packed)
    x_all, y_all, shared = packed.batch(split, None)
    n = x_all.shape[0 if shared else 1]
    for start in range(0, n, EVAL_BATCH):
        part = slice(start, start + EVAL_BATCH)
        x = x_all[part] if shared else x_all[:, part]
        y = {t: (v[part] if shared else v[:, part]) for t, v in y_all.items()}
        outputs, losses = packed.forward(x, y, shared_batch=shared)
        meters.update(outputs, y, losses)
    packed.template.train()
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
            _stop(packed, members, m, "diverged", DIVERGED_MESSAGE.format(
                task=bad[0], value=bad[1], step=run.step, lr=run.config.optim.lr / 10))
            continue
        run.weighting.end_epoch(epoch, {t: v["loss"] for t, v in train_metrics.items()})
        logs = {"epoch": epoch, "step": run.step, "lr": packed.optimizer.param_groups[0]["lr"],
                "train": train_metrics, "val": val[k]}
        packed.write_back(k)  # callbacks may checkpoint the run
        for cb in m.callbacks:
            cb.on_epoch_end(run, logs)
        score = score_from_losses({t: v["loss"] for t, v in val[k].items()}, dict(run.config.loss.weights))
        if score < m.best_score - 1e-6:
            m.best_score, m.best_epoch = score, epoch
