"""The packed loop: ``fit_packed`` trains runs that pack as one stacked model; ``fit_many`` trains any list.

It is ``engine.fit``'s loop for N members at once. Each member draws its
batches from its own seeded order (so it sees the same batches as alone),
weights its losses with its own method and sliders, and reports through its
own callbacks exactly as ``fit`` would: step logs, epoch logs (its model
written back first) and its end. A member that stops (cancelled or
diverged) reports at once and its slice of the stacked model stays frozen;
the others train on. Divergence and the end summary are decided as in
``fit`` (``mtlcore.outcome``: one owner for both loops). Results equal
training one by one up to floating-point rounding (``tests/test_speed.py``,
``tests/test_packed_speedups.py``); random draws inside a step (dropout,
``rlw``'s weights) come from one stream and match a lone run's in
distribution only.

Measured (benchmarks/README.md, 2-core EPYC, 1 thread, the default
relatedness study: 36 hard/single MLPs in one group, 12 MMoEs in another):
the study trains about 3x faster than its runs one by one, and ~20x faster
than one ``python -m mtlcore train`` process per run. Evaluation runs in
passes of at most ``EVAL_ROWS`` rows: a pass over 36 members x 600 rows
(~40 MB of activations) took ~1.5x as long, every pass getting fresh pages
from the system and nothing staying in the cache.

    >>> from mtlcore.packing import fit_many
    >>> results = fit_many([config_a, config_b, config_c])   # FitResults, in order
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..config import ExperimentConfig
from ..data import load_dataset
from ..devices import resolve_device
from ..engine import EVAL_BATCH, Callback, FitResult, TrainingRun, fit
from ..metrics import score_from_losses
from ..outcome import divergence, end_summary
from .grouping import pack_groups, pack_key
from .stacked import PackedRuns, StackedMeters

__all__ = ["EVAL_ROWS", "fit_many", "fit_packed"]

# Rows of one stacked evaluation pass (N members x their rows): see the module's docstring.
EVAL_ROWS = 8192


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


def fit_packed(configs: Sequence[ExperimentConfig], callbacks: Sequence[Sequence[Callback]] | None = None,
               device: torch.device | str | None = None) -> list[FitResult]:
    """Train ``configs`` (one ``pack_key``) together; one FitResult per config, in order.

    Callbacks see each member as ``fit`` would show it: a ``TrainingRun``
    (its model updated at every epoch end), step logs every
    ``train.log_every`` steps, epoch logs, and the end.
    """
    started = time.perf_counter()
    # Trusted as they come (a stored config was validated when it was queued); the key is the guard.
    keys = {pack_key(c) for c in configs}
    if len(keys) != 1 or None in keys:
        raise ValueError("fit_packed needs configs that pack together (see pack_key); use fit_many.")
    first = configs[0]
    device = resolve_device(first.device) if device is None else torch.device(device)
    datasets = [load_dataset(c.dataset.name, seed=c.dataset.seed, **c.dataset.options) for c in configs]
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
                if m.status == "running":  # live steering: a member's new loss weights act from this step
                    for cb in m.callbacks:
                        # A hook newer than the others: a callback that is not a Callback subclass may lack it.
                        begin = getattr(cb, "on_step_begin", None)
                        if begin is not None:
                            begin(m.run)
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


def _report_end(packed: PackedRuns, member: Member, evaluation: dict[str, Any] | None = None) -> None:
    """Member's FitResult, as ``fit`` would give it (``outcome.end_summary``), handed to its callbacks.

    ``evaluation``: its {"val": ..., "test": ...} metrics from the stacked
    model's pass; None: its own model is evaluated (a member that stopped
    early), unless it diverged.
    """
    run = member.run
    summary = end_summary(run, member.status, member.message, member.best_epoch, packed.started, evaluation,
                          packed=len(packed.runs))
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
        diverged = divergence(run.config, loss, run.step)
        if diverged is not None:
            _stop(packed, members, m, "diverged", diverged)
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
    if status != "diverged":
        packed.write_back(members.index(member))  # then end_summary evaluates its own model
    _report_end(packed, member)


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
        diverged = divergence(run.config, {t: v["loss"] for t, v in train_metrics.items()}, run.step)
        if diverged is not None:
            _stop(packed, members, m, "diverged", diverged)
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
