"""Multi-task against single-task: baselines, relative changes and Delta_m.

Does training tasks together help? For each task of a multi-task (MTL) run,
compare its test metric with a single-task (STL) run of that task trained
with the *same* settings, then summarise over tasks with Delta_m, the
average relative change of every task's metric:

    Delta_m % = (1/K) * sum_k (-1)^delta_k * (M_mtl,k - M_stl,k) / M_stl,k * 100

with delta_k = 1 when a higher value of task k's metric is better (accuracy)
and 0 when lower is better (MAE). **A negative Delta_m means the multi-task
model is better** on average ("lower is better"), and a positive one means
sharing hurt.

Who defined what. Maninis, Radosavovic & Kokkinos, "Attentive Single-
Tasking of Multiple Tasks" (CVPR 2019) defined Delta_m against single-task
baselines with the opposite sign: their exponent is 1 when *lower* is
better, so for them positive = multi-task better. Navon et al., "Multi-Task
Learning as a Bargaining Game" (Nash-MTL, ICML 2022) flipped it to the form
above, and later gradient-method papers (FAMO among them) report it so;
this lab uses Nash-MTL's sign. LibMTL's ``count_improvement`` and
Auto-Lambda (Liu et al., TMLR 2022) report the original sign (positive =
better), and LibMTL's default baseline is not single-task training: unless
given one, it compares a run with *itself after its first epoch* (epoch 0).
Numbers from those sources are therefore comparable with ours only after
flipping the sign, and LibMTL's only when it was given single-task
baselines. Because the sign is easy to misread, this module also gives the
opposite-signed ``improvement`` (positive = sharing helped) and a
plain-words ``verdict`` per task; ``SIGN_CONVENTION`` says it in one
sentence for the app.

    >>> round(delta_m({"shape": 0.9, "size": 2.0}, {"shape": 0.8, "size": 2.5},
    ...               {"shape": True, "size": False}), 2)   # both tasks better with sharing
    -16.25

Everything here is pure Python on plain numbers, configs and run records,
so the app, the command line and the studies share one definition.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from .config import ExperimentConfig, ModelConfig, RegConfig, TrainConfig, WeightingConfig
from .safe_text import csv_cell

__all__ = [
    "Baselines",
    "TaskComparison",
    "baseline_config",
    "baseline_key",
    "compare_to_baselines",
    "delta_m",
    "find_baseline",
    "improvement",
    "relative_change",
    "relative_changes",
    "results_table",
    "rows_to_csv",
    "task_scoring",
    "test_metric",
    "verdict",
]

# The sign of ``delta_m``, in one sentence for captions (see the module's docstring).
SIGN_CONVENTION = (
    "Sign as in Nash-MTL (Navon et al., ICML 2022): negative = multi-task better. Maninis et al. (CVPR 2019), "
    "who defined Δm, and LibMTL and Auto-Lambda report the opposite sign (positive = better); LibMTL's default "
    "baseline is the run itself after its first epoch, not single-task training."
)

# Where ``delta_m`` and the verdicts come from, for captions and reports.
CITATION = (
    "Maninis, Radosavovic & Kokkinos, Attentive Single-Tasking of Multiple Tasks, CVPR 2019; "
    "Navon et al., Multi-Task Learning as a Bargaining Game (Nash-MTL), ICML 2022."
)


# ----- the arithmetic -------------------------------------------------------------

def relative_change(mtl: float, stl: float, higher_is_better: bool) -> float:
    """One task's term of Delta_m, in percent: ``(-1)^delta (mtl - stl) / stl * 100``.

    Paper sign convention: **negative = the multi-task model is better.**
    A single-task value of 0 (or a non-finite value) has no relative change
    and raises ValueError.
    """
    mtl, stl = float(mtl), float(stl)
    if not (math.isfinite(mtl) and math.isfinite(stl)):
        raise ValueError(f"Relative change needs finite values, got multi-task {mtl} and single-task {stl}.")
    if stl == 0:
        raise ValueError("The single-task value is 0, so a relative change cannot be computed.")
    sign = -1.0 if higher_is_better else 1.0
    return sign * (mtl - stl) / abs(stl) * 100.0


def improvement(mtl: float, stl: float, higher_is_better: bool) -> float:
    """How much better the multi-task value is, in percent of the single-task one.

    The opposite sign of ``relative_change``: **positive = sharing helped**.
    """
    return -relative_change(mtl, stl, higher_is_better)


def relative_changes(mtl: Mapping[str, float], stl: Mapping[str, float],
                     higher_is_better: Mapping[str, bool]) -> dict[str, float]:
    """Each task's ``relative_change`` (paper sign: negative = MTL better), for the tasks of ``mtl``.

    Every task of ``mtl`` needs a value in ``stl`` and an entry in ``higher_is_better``.
    """
    if not mtl:
        raise ValueError("No tasks to compare: give at least one task's multi-task value.")
    changes = {}
    for task, value in mtl.items():
        if task not in stl:
            raise ValueError(f"Task {task!r} has no single-task value to compare with.")
        if task not in higher_is_better:
            raise ValueError(f"Task {task!r} does not say whether higher is better.")
        try:
            changes[task] = relative_change(value, stl[task], higher_is_better[task])
        except ValueError as error:
            raise ValueError(f"Task {task!r}: {error}") from None
    return changes


def delta_m(mtl: Mapping[str, float], stl: Mapping[str, float], higher_is_better: Mapping[str, bool]) -> float:
    """Delta_m in percent: defined by Maninis et al. 2019, with the sign of Nash-MTL (Navon et al. 2022).

    ``Delta_m = (1/K) sum_k (-1)^delta_k (M_mtl,k - M_stl,k) / M_stl,k * 100``,
    delta_k = 1 if higher is better for task k. The mean is over the tasks
    of ``mtl`` (K of them). **Negative = the multi-task model is better on
    average; positive = sharing hurt** (Nash-MTL's sign; Maninis et al.,
    LibMTL and Auto-Lambda use the opposite one). ``stl`` may be a single
    baseline per task, or a mean over seeds computed by the caller.
    """
    changes = relative_changes(mtl, stl, higher_is_better)
    return sum(changes.values()) / len(changes)


def verdict(mtl: float, stl: float, higher_is_better: bool, metric: str) -> tuple[str, bool | None]:
    """A plain-words sentence on one task, and whether sharing helped (None: no difference).

    Accuracy-like metrics in [0, 1] are reported in percentage points
    ("sharing helped: +3.2 points accuracy"); others as a relative change
    ("negative transfer: MAE 12% worse").
    """
    mtl, stl = float(mtl), float(stl)
    if mtl == stl:
        return f"no difference: {metric} is the same with and without sharing", None
    better = (mtl > stl) == higher_is_better
    head = "sharing helped" if better else "negative transfer"
    name = metric.upper() if metric == "mae" else metric
    if metric == "accuracy":
        points = (mtl - stl) * 100.0
        return f"{head}: {points:+.1f} points {name}", better
    if stl == 0:
        return f"{head}: {name} {mtl:.4g} vs {stl:.4g}", better
    percent = abs(mtl - stl) / abs(stl) * 100.0
    return f"{head}: {name} {percent:.1f}% {'better' if better else 'worse'}", better


# ----- baselines ------------------------------------------------------------------

_DEFAULT_MODEL, _DEFAULT_REG, _DEFAULT_TRAIN = ModelConfig(), RegConfig(), TrainConfig()


def baseline_config(config: ExperimentConfig, task: str) -> ExperimentConfig:
    """The single-task baseline of ``task`` for the multi-task ``config``.

    The same config (dataset and its options, trunk, width, optimiser,
    epochs, batch size, regularisers, seed, device) with ``tasks=(task,)``,
    ``model.arch="single"``, no loss weights and static weighting. Settings
    the single-task model cannot use (number of experts, soft-sharing
    strength, weighting options) are reset to their defaults, so that one
    baseline serves the hard, soft, cross-stitch and MMoE runs alike.
    """
    if task not in config.tasks:
        raise ValueError(f"Task {task!r} is not one of this run's tasks ({', '.join(config.tasks)}).")
    return config.with_updates(
        tasks=(task,),
        model=replace(config.model, arch="single", num_experts=_DEFAULT_MODEL.num_experts),
        loss=replace(config.loss, weights={}),
        weighting=WeightingConfig(method="static", options={}),
        reg=replace(config.reg, soft_lambda=_DEFAULT_REG.soft_lambda, soft_norm=_DEFAULT_REG.soft_norm),
    )


def baseline_key(config: ExperimentConfig) -> str:
    """What two configs must share to count as the same baseline.

    Settings that do not change what is learned are left out: the device
    (a baseline trained on the CPU serves a GPU run) and how often metrics
    and diagnostics are logged.
    """
    plain = config.with_updates(
        device="auto",
        train=replace(config.train, log_every=_DEFAULT_TRAIN.log_every,
                      diagnostics_every=_DEFAULT_TRAIN.diagnostics_every),
    )
    return plain.to_json()


class Baselines:
    """Runs indexed by ``baseline_key``, to look up many baselines among many runs quickly.

    Only single-task runs (``model.arch="single"``, one task) can be
    baselines, so only those are indexed.
    """

    def __init__(self, runs: Iterable[Any]):
        self._by_key: dict[str, list[Any]] = {}
        for run in runs:
            if run.config.model.arch == "single" and len(run.config.tasks) == 1:
                self._by_key.setdefault(baseline_key(run.config), []).append(run)

    def find(self, config: ExperimentConfig, task: str, states: Sequence[str] = ("finished",)) -> Any | None:
        """The newest run in ``states`` whose config is ``baseline_config(config, task)``, or None."""
        candidates = self._by_key.get(baseline_key(baseline_config(config, task)), [])
        matches = [r for r in candidates if r.state in states]
        return max(matches, key=lambda r: r.created_at or 0.0) if matches else None


def find_baseline(runs: Iterable[Any], config: ExperimentConfig, task: str,
                  states: Sequence[str] = ("finished",)) -> Any | None:
    """The newest run in ``runs`` whose config is ``baseline_config(config, task)``.

    ``runs`` are RunRecords (anything with ``config``, ``state`` and
    ``created_at``); only runs in ``states`` count (default: finished ones,
    which have test metrics). Returns None when there is none. To look up
    many baselines among the same runs, build one ``Baselines(runs)``.
    """
    return Baselines(r for r in runs if r.config.tasks == (task,)).find(config, task, states)


# ----- tables -----------------------------------------------------------------------

def task_scoring(config: ExperimentConfig, task: str, summary: Mapping[str, Any] | None = None) -> tuple[str, bool]:
    """``(metric, higher_is_better)`` of ``task``: from the dataset registry, else from the run's summary.

    The summary's copy keeps old runs readable after their dataset was removed
    (an imported dataset deleted, say). Raises ValueError when neither knows the task.
    """
    from .data import dataset_info  # imported here: the dataset registry imports torch

    try:
        spec = dataset_info(config.dataset.name).task(task)
        return spec.metric, spec.higher_is_better
    except (KeyError, ValueError):
        recorded = ((summary or {}).get("tasks") or {}).get(task)
        if isinstance(recorded, Mapping) and "metric" in recorded and "higher_is_better" in recorded:
            return str(recorded["metric"]), bool(recorded["higher_is_better"])
    raise ValueError(f"Task {task!r} of dataset {config.dataset.name!r} is unknown here, so its metric is unknown.")


def test_metric(summary: Mapping[str, Any] | None, task: str, metric: str) -> float | None:
    """``summary["test"][task][metric]``, or None when the run has no such value."""
    try:
        value = (summary or {})["test"][task][metric]
    except (KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass(frozen=True)
class TaskComparison:
    """One task of a multi-task run next to its single-task baseline."""

    task: str
    metric: str  # "accuracy" or "mae"
    higher_is_better: bool
    mtl: float | None  # the multi-task run's test value
    stl: float | None  # the baseline's test value; None when there is no finished baseline
    baseline_id: str | None

    @property
    def complete(self) -> bool:
        return self.mtl is not None and self.stl is not None

    @property
    def change(self) -> float | None:
        """Paper sign (negative = MTL better), in percent; None without both values or with stl = 0."""
        if not self.complete or self.stl == 0:
            return None
        return relative_change(self.mtl, self.stl, self.higher_is_better)

    @property
    def verdict(self) -> tuple[str, bool | None]:
        if not self.complete:
            return ("no single-task baseline yet" if self.stl is None else "no multi-task test result"), None
        return verdict(self.mtl, self.stl, self.higher_is_better, self.metric)

    def row(self) -> dict[str, Any]:
        """A row for a table or a CSV file."""
        text, helped = self.verdict
        change = self.change
        return {
            "task": self.task,
            "metric": self.metric,
            "better when": "higher" if self.higher_is_better else "lower",
            "multi-task": self.mtl,
            "single-task": self.stl,
            "relative change % (paper sign, negative = MTL better)": change,
            "improvement % (positive = sharing helped)": None if change is None else -change,
            "verdict": text,
            "sharing helped": helped,
            "baseline run": self.baseline_id,
        }


def compare_to_baselines(run: Any, runs: Iterable[Any] | Baselines) -> list[TaskComparison]:
    """Each task of ``run`` against its newest finished baseline among ``runs`` (or a ``Baselines`` index)."""
    baselines = runs if isinstance(runs, Baselines) else Baselines(runs)
    comparisons = []
    for task in run.config.tasks:
        metric, higher_is_better = task_scoring(run.config, task, run.summary)
        baseline = baselines.find(run.config, task)
        comparisons.append(TaskComparison(
            task=task, metric=metric, higher_is_better=higher_is_better,
            mtl=test_metric(run.summary, task, metric),
            stl=None if baseline is None else test_metric(baseline.summary, task, metric),
            baseline_id=None if baseline is None else baseline.id,
        ))
    return comparisons


def results_table(runs: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per run: its label and id, its final test metric for every task, then its settings.

    Metric columns are ``"<task> <metric>"`` (e.g. ``"shape accuracy"``, ``"size mae"``);
    a run without a task, or not finished, leaves that cell None.
    """
    rows = []
    for run in runs:
        config = run.config
        row: dict[str, Any] = {"label": run.label, "run": run.id}
        for task in config.tasks:
            try:
                metric, _ = task_scoring(config, task, run.summary)
            except ValueError:
                continue  # a task nothing knows any more: leave it out rather than fail the table
            row[f"{task} {metric}"] = test_metric(run.summary, task, metric)
        row.update({
            "owner": run.owner, "state": run.state, "dataset": config.dataset.name,
            "tasks": ", ".join(config.tasks), "architecture": config.model.arch,
            "weighting": config.weighting.method,
            "epochs": (run.summary or {}).get("epochs", config.train.epochs), "seed": config.seed,
        })
        rows.append(row)
    return rows


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (dicts) as CSV text; the columns are every key in order of first appearance.

    Labels, owners and task names are user text: a cell (or header) that a
    spreadsheet would read as a formula is neutralised (``safe_text.csv_cell``).
    """
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell("" if row.get(c) is None else row[c]) for c in columns])
    return buffer.getvalue()


def __getattr__(name: str):
    """The seed helpers live in ``mtlcore.seeds``; ``mtlcore.compare`` still offers them (the Compare page)."""
    if name in ("seed_key", "seed_runs", "seeded_values", "missing_seed_configs"):
        from . import seeds

        return getattr(seeds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
