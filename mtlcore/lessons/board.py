"""The class board's numbers: one row per run of a lesson, ranked by the lesson's goal, and the shared front.

Pure functions over RunRecords (no Streamlit, no torch), so that the board
page stays thin and the ranking is tested on its own.

A run's values are its test metrics (``summary["test"]``), so only finished
runs are ranked and plotted; queued and running ones are listed below them
with their state. Delta_m (``best Delta_m`` goals) compares a multi-task run
with the finished single-task baselines of the same settings found in the
store (mtlcore.compare; negative = sharing helped).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..compare import Baselines, compare_to_baselines, rows_to_csv, task_scoring, test_metric
from .goal import Goal, metric_text


@dataclass(frozen=True)
class BoardRow:
    """One run of the lesson as the board shows it."""

    run_id: str
    student: str  # the run's owner as shown (a display name)
    student_key: str | None  # the hash of the browser key it was started from: one student, one key
    label: str
    state: str
    progress: float
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> metric -> test value
    delta_m: float | None = None
    goal_value: float | None = None
    meets: bool | None = None  # the goal's condition; None without a condition or without the value

    @property
    def student_id(self) -> tuple[str, str]:
        """What makes two runs one student's: the browser key, else the name (keyless runs)."""
        return ("key", self.student_key) if self.student_key else ("name", self.student.casefold())

    def value(self, task: str) -> float | None:
        values = self.values.get(task) or {}
        return next(iter(values.values()), None)


def run_values(record: Any) -> dict[str, dict[str, float]]:
    """``{task: {metric: test value}}`` of a run with a summary; {} before it has one."""
    values: dict[str, dict[str, float]] = {}
    for task in record.config.tasks:
        try:
            metric, _ = task_scoring(record.config, task, record.summary)
        except ValueError:
            continue
        value = test_metric(record.summary, task, metric)
        if value is not None:
            values[task] = {metric: value}
    return values


def run_delta_m(record: Any, baselines: Baselines) -> float | None:
    """Delta_m of a finished multi-task run against its finished baselines (percent, paper sign); None if any is missing."""
    if record.state != "finished" or len(record.config.tasks) < 2:
        return None
    changes = [c.change for c in compare_to_baselines(record, baselines)]
    if not changes or any(c is None for c in changes):
        return None
    return sum(changes) / len(changes)


def board_rows(records: Iterable[Any], goal: Goal, all_runs: Iterable[Any] = ()) -> list[BoardRow]:
    """The lesson's runs ranked by ``goal``: finished runs meeting its condition first, best first.

    ``all_runs`` are the store's runs where single-task baselines are looked
    up for Delta_m (a student's own baselines, or anyone's with the same settings).
    """
    records = list(records)
    baselines = Baselines(list(all_runs) + records) if goal.metric == "delta_m" else None
    rows = []
    for record in records:
        values = run_values(record) if record.state == "finished" else {}
        delta = run_delta_m(record, baselines) if baselines is not None else None
        meets = goal.condition.met(values) if goal.condition else None
        rows.append(BoardRow(run_id=record.id, student=record.owner, student_key=getattr(record, "owner_key", None),
                             label=record.label, state=record.state, progress=float(record.progress or 0.0),
                             values=values, delta_m=delta, goal_value=goal.value(values, delta), meets=meets))
    return sort_rows(rows, goal)


def sort_rows(rows: Sequence[BoardRow], goal: Goal) -> list[BoardRow]:
    """Ranked: runs with a goal value first (meeting the condition before not), best value first; newest order kept otherwise."""
    return sorted(rows, key=lambda row: (row.goal_value is None,
                                         goal.sort_key(row.values, row.delta_m)))


def axes(goal: Goal, tasks: Sequence[str]) -> tuple[str, str] | None:
    """The two tasks on the board's chart: those the goal names, then the lesson's others; None with fewer than two."""
    ordered = list(dict.fromkeys([*goal.tasks, *tasks]))
    return (ordered[0], ordered[1]) if len(ordered) >= 2 else None


def student_points(rows: Sequence[BoardRow], x: str, y: str) -> list[BoardRow]:
    """One run per student: their best-ranked finished run that has both tasks' values (``rows`` ranked)."""
    seen, points = set(), []
    for row in rows:
        if row.value(x) is None or row.value(y) is None or row.student_id in seen:
            continue
        seen.add(row.student_id)
        points.append(row)
    return points


def pareto_front(points: Sequence[tuple[float, float]], x_higher: bool, y_higher: bool) -> list[tuple[float, float]]:
    """The points no other point beats on both axes, ordered along x (the shared front of the class)."""
    def better_or_equal(a: float, b: float, higher: bool) -> bool:
        return a >= b if higher else a <= b

    front = []
    for p in points:
        dominated = any(better_or_equal(q[0], p[0], x_higher) and better_or_equal(q[1], p[1], y_higher)
                        and q != p for q in points)
        if not dominated and p not in front:
            front.append(p)
    return sorted(front)


def table(rows: Sequence[BoardRow], goal: Goal, metrics: Mapping[str, str]) -> list[dict[str, Any]]:
    """The board's table: rank, student, run, state, each task's value, Δm and the goal's condition.

    ``metrics``: each task's metric (task -> "accuracy" or "mae"), in column order; accuracy in percent.
    """
    out = []
    rank = 0
    for row in rows:
        ranked = row.goal_value is not None
        rank += ranked
        entry: dict[str, Any] = {"#": rank if ranked else None, "Student": row.student, "Run": row.label or row.run_id,
                                 "State": row.state if row.state != "running" else f"running {row.progress:.0%}"}
        for task, metric in metrics.items():
            unit = " %" if metric == "accuracy" else ""
            entry[f"{task} {metric_text(metric)}{unit}"] = _shown((row.values.get(task) or {}).get(metric), metric)
        if goal.metric == "delta_m" or any(r.delta_m is not None for r in rows):
            entry["Δm %"] = None if row.delta_m is None else round(row.delta_m, 1)
        if goal.condition is not None:
            entry[str(goal.condition)] = {True: "yes", False: "no", None: "—"}[row.meets]
        out.append(entry)
    return out


def _shown(value: float | None, metric: str | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value * 100, 1) if metric == "accuracy" else round(value, 3)


def export_csv(rows: Sequence[BoardRow], goal: Goal, metrics: Mapping[str, str]) -> str:
    """The lesson's results as CSV: every run with its student, state, values (unrounded), Δm and goal value."""
    records = []
    for rank, row in enumerate(rows, 1):
        entry: dict[str, Any] = {"rank": rank if row.goal_value is not None else "", "student": row.student,
                                 "run": row.run_id, "label": row.label, "state": row.state}
        for task, metric in metrics.items():
            entry[f"{task} {metric}"] = (row.values.get(task) or {}).get(metric)
        entry["delta_m %"] = row.delta_m
        entry[f"goal: {goal.text}"] = row.goal_value
        if goal.condition is not None:
            entry[str(goal.condition)] = row.meets
        records.append(entry)
    return rows_to_csv(records)


def answer_shares(counts: Mapping[str, int], choices: Sequence[str] = ()) -> list[tuple[str, int]]:
    """``(answer, count)`` in the question's order of choices, then any other answers given."""
    ordered = list(dict.fromkeys([*choices, *counts]))
    return [(answer, int(counts.get(answer, 0))) for answer in ordered]
