"""A study's result from its members' test metrics, for each kind.

``build_result(spec, groups, outcomes)`` works on whatever has finished so
far, so a page can redraw it as runs come in: a value that needs a run not
yet finished is None. Only plain numbers go in and out, and the output is
JSON as written to ``result.json``. The file uses no torch, but importing it
loads torch all the same: ``mtlcore.studies`` imports the engine (local.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

from ..compare import delta_m
from ..verdicts import delta_m_verdict, verdict_of_values
from ..ensemble import ensemble_scores
from .plans import arch_group, ensemble_group, stl_group, subset_group
from .results import Spread, affinity_matrix, clearly_different, gain, mean_std, pareto_front, transfer_matrix
from .spec import StudySpec

CLEAR_RULE = ("A difference counts as larger than the seed-to-seed spread when "
              "|mean MTL - mean STL| > std STL + std MTL (sample std over seeds; needs 2+ seeds).")


@dataclass(frozen=True)
class Outcome:
    """What one finished member run gave: its summary's test metrics and task info."""

    group: str
    seed: int
    test: dict[str, dict[str, float]]  # summary["test"]
    tasks: dict[str, dict[str, Any]]  # summary["tasks"]: each task's metric and higher_is_better
    affinity: list[dict[str, float]] = field(default_factory=list)  # per epoch, from the diagnostics
    # A bagging member's test predictions (summary["test_outputs"]), for its ensemble's score.
    outputs: dict[str, dict[str, list]] = field(default_factory=dict)
    parameters: int | None = None  # summary["parameters"]
    # Training seconds of this run: a packed run's share of its pack's time (the pack's time / members).
    seconds: float | None = None

    @classmethod
    def from_summary(cls, group: str, seed: int, summary: dict[str, Any],
                     epochs: Sequence[dict[str, Any]] = ()) -> "Outcome":
        """From fit's summary and (for diagnostics) its epoch logs."""
        affinity = [e["diagnostics"]["affinity"] for e in epochs
                    if (e.get("diagnostics") or {}).get("affinity")]
        seconds = summary.get("seconds")
        share = None if seconds is None else float(seconds) / max(1, int(summary.get("packed", 1)))
        return cls(group, seed, summary.get("test", {}), summary.get("tasks", {}), affinity,
                   summary.get("test_outputs") or {}, summary.get("parameters"), share)


class _Table:
    """Outcomes indexed by group, seed and task, with each task's metric."""

    def __init__(self, outcomes: Sequence[Outcome]):
        self.by_group: dict[str, dict[int, Outcome]] = {}
        self.metric: dict[str, str] = {}
        self.higher: dict[str, bool] = {}
        self.kind: dict[str, str] = {}
        for outcome in outcomes:
            self.by_group.setdefault(outcome.group, {})[outcome.seed] = outcome
            for task, info in outcome.tasks.items():
                self.metric[task] = info["metric"]
                self.higher[task] = bool(info["higher_is_better"])
                self.kind[task] = info.get("kind", "classification")

    def value(self, group: str, seed: int, task: str) -> float | None:
        outcome = self.by_group.get(group, {}).get(seed)
        if outcome is None or task not in self.metric:
            return None
        return outcome.test.get(task, {}).get(self.metric[task])

    def values(self, group: str, task: str) -> dict[int, float]:
        """Seed -> test value of ``task`` in ``group``, for the finished runs."""
        found = {seed: self.value(group, seed, task) for seed in self.by_group.get(group, {})}
        return {seed: v for seed, v in found.items() if v is not None}

    def spread(self, group: str, task: str) -> Spread | None:
        return mean_std(self.values(group, task).values())

    def mean(self, group: str, task: str) -> float | None:
        spread = self.spread(group, task)
        return None if spread is None else spread.mean

    def task_row(self, task: str) -> dict[str, Any]:
        return {"task": task, "metric": self.metric.get(task), "higher_is_better": self.higher.get(task)}


def build_result(spec: StudySpec, groups: Sequence[str], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The kind's result from the finished members' ``outcomes``.

    ``groups`` are the plan's group names in plan order (``plans.plan``).
    """
    table = _Table(outcomes)
    build = {"stl-vs-mtl": _stl_vs_mtl, "pairs": _pairs, "sweep": _sweep, "relatedness": _relatedness,
             "mtl-vs-ensemble": _mtl_vs_ensemble}[spec.kind]
    return build(spec, list(dict.fromkeys(groups)), table)


def _dict(spread: Spread | None) -> dict[str, Any] | None:
    return None if spread is None else spread.as_dict()


def _delta_m(table: _Table, tasks: Sequence[str], mtl: dict[str, float | None],
             stl: dict[str, float | None]) -> float | None:
    """Delta_m (paper sign) over ``tasks``, or None while a value is missing or zero."""
    if any(mtl.get(t) is None or not stl.get(t) or t not in table.higher for t in tasks):
        return None
    return delta_m({t: mtl[t] for t in tasks}, {t: stl[t] for t in tasks}, {t: table.higher[t] for t in tasks})


def _stl_vs_mtl(spec: StudySpec, groups: list[str], table: _Table) -> dict[str, Any]:
    tasks, rows = spec.base.tasks, []
    for task in tasks:
        stl, mtl = table.spread(stl_group(task), task), table.spread("mtl", task)
        rows.append({
            **table.task_row(task),
            "stl": _dict(stl),
            "mtl": _dict(mtl),
            "gain": None if stl is None or mtl is None else gain(mtl.mean, stl.mean, table.higher[task]),
            "clear": clearly_different(stl, mtl),
        })
    dm = _delta_m(table, tasks, {t: table.mean("mtl", t) for t in tasks},
                  {t: table.mean(stl_group(t), t) for t in tasks})
    # The verdict: Delta_m per seed, seed s of the multi-task run against seed s of the baselines.
    seeds = table.by_group.get("mtl", {})
    verdict = delta_m_verdict({s: {t: table.value("mtl", s, t) for t in tasks} for s in seeds},
                              {s: {t: table.value(stl_group(t), s, t) for t in tasks} for s in seeds},
                              {t: table.higher[t] for t in tasks if t in table.higher})
    return {"tasks": rows, "delta_m": dm, "mean_gain": None if dm is None else -dm, "rule": CLEAR_RULE,
            "verdict": verdict.to_dict() if set(table.higher) >= set(tasks) else None}


def _mtl_vs_ensemble(spec: StudySpec, groups: list[str], table: _Table) -> dict[str, Any]:
    """Per task: MTL, STL, the ensemble (averaged and voted) and one member; then the budgets."""
    tasks, k = spec.base.tasks, spec.ensemble
    seeds = sorted({seed for group in table.by_group.values() for seed in group})

    def members(task: str, seed: int) -> list[Outcome] | None:
        found = [table.by_group.get(ensemble_group(task, j), {}).get(seed) for j in range(k)]
        return None if any(o is None for o in found) else found

    rows = []
    for task in tasks:
        averaged, voted, single = {}, {}, {}
        for seed in seeds:
            group = members(task, seed)
            if group is None or task not in table.metric:
                continue
            scores = ensemble_scores(table.kind[task], [o.outputs.get(task, {}) for o in group])
            if scores is not None:
                averaged[seed] = scores[table.metric[task]]
                if "vote_accuracy" in scores:
                    voted[seed] = scores["vote_accuracy"]
            values = [o.test.get(task, {}).get(table.metric[task]) for o in group]
            if all(v is not None for v in values):
                single[seed] = sum(values) / k  # the average member
        mtl, ensemble = table.spread("mtl", task), mean_std(averaged.values())
        rows.append({
            **table.task_row(task),
            "mtl": _dict(mtl),
            "stl": _dict(table.spread(stl_group(task), task)),
            "ensemble": _dict(ensemble),
            "vote": _dict(mean_std(voted.values())),
            "member": _dict(mean_std(single.values())),
            # The ensemble's gain over the multi-task model (positive = the ensemble is better).
            "ensemble_vs_mtl": None if mtl is None or ensemble is None
            else gain(ensemble.mean, mtl.mean, table.higher[task]),
            "clear": clearly_different(mtl, ensemble),
        })

    def budget(name: str, groups_of_seed: list[str]) -> dict[str, Any]:
        parameters, seconds = [], []
        for seed in seeds:
            found = [table.by_group.get(g, {}).get(seed) for g in groups_of_seed]
            if all(o is not None for o in found):
                if all(o.parameters is not None for o in found):
                    parameters.append(sum(o.parameters for o in found))
                if all(o.seconds is not None for o in found):
                    seconds.append(sum(o.seconds for o in found))
        return {"model": name, "runs": len(groups_of_seed),
                "parameters": max(parameters) if parameters else None, "seconds": _dict(mean_std(seconds))}

    budgets = [
        budget("multi-task (one model)", ["mtl"]),
        budget(f"single-task ({len(tasks)} models)", [stl_group(t) for t in tasks]),
        budget(f"ensemble ({k} per task, {k * len(tasks)} models)",
               [ensemble_group(t, j) for t in tasks for j in range(k)]),
    ]
    return {"tasks": rows, "budgets": budgets, "ensemble": k,
            "rule": CLEAR_RULE.replace("MTL - mean STL", "ensemble - mean MTL").replace("std STL + std MTL",
                                                                                       "std MTL + std ensemble")}


def _pairs(spec: StudySpec, groups: list[str], table: _Table) -> dict[str, Any]:
    tasks = list(spec.base.tasks)
    alone = {t: table.mean(stl_group(t), t) for t in tasks}
    together = {frozenset(pair): {t: table.mean(subset_group(pair), t) for t in pair}
                for pair in combinations(tasks, 2)}
    transfer = transfer_matrix(tasks, alone, together, {t: table.higher.get(t, True) for t in tasks})
    subsets = []
    for group in groups:
        if not group.startswith("group:"):
            continue
        members = group.split(":", 1)[1].split("+")
        gains = {t: gain(table.mean(group, t), alone[t], table.higher.get(t, True)) for t in members}
        complete = all(g is not None for g in gains.values())
        subsets.append({"tasks": members, "gains": gains,
                        "mean_gain": sum(gains.values()) / len(gains) if complete else None})
    everything = table.by_group.get(subset_group(tuple(tasks)), {})
    affinity = affinity_matrix(tasks, [log for outcome in everything.values() for log in outcome.affinity])
    note = None
    if affinity is None:
        note = ("No lookahead affinity yet: the all-task run has not finished." if not everything else
                f"No lookahead affinity: model.arch={spec.base.model.arch} has no shared parameters to step on.")
    return {
        "tasks": [table.task_row(t) for t in tasks],
        "stl": {t: _dict(table.spread(stl_group(t), t)) for t in tasks},
        "transfer": transfer,
        "affinity": affinity,
        "affinity_note": note,
        "subsets": subsets,
    }


def _sweep(spec: StudySpec, groups: list[str], table: _Table) -> dict[str, Any]:
    a, b = spec.base.tasks
    points = []
    for group in groups:
        kind, name = group.split(":", 1)
        values = {t: table.spread(group, t) for t in (a, b)}
        points.append({
            "group": group,
            "kind": "weight" if kind == "weight" else "method",
            "label": f"w={name}" if kind == "weight" else name,
            "weight": float(name) if kind == "weight" else None,
            "values": {t: _dict(s) for t, s in values.items()},
            "on_front": None,
        })
    complete = [p for p in points if all(p["values"][t] is not None for t in (a, b))]
    if complete and a in table.higher and b in table.higher:
        means = [{t: p["values"][t]["mean"] for t in (a, b)} for p in complete]
        front = set(pareto_front(means, {a: table.higher[a], b: table.higher[b]}))
        for i, point in enumerate(complete):
            point["on_front"] = i in front
    return {"tasks": [table.task_row(t) for t in (a, b)], "points": points}


def _relatedness(spec: StudySpec, groups: list[str], table: _Table) -> dict[str, Any]:
    tasks, rows = spec.base.tasks, []
    for p in spec.correlations:
        for arch in spec.archs:
            group = arch_group(arch, p)
            # Benefit per seed: seed s of the shared model against seed s of the baselines.
            per_seed, dm_per_seed = [], {}
            for seed in table.by_group.get(group, {}):
                mtl = {t: table.value(group, seed, t) for t in tasks}
                stl = {t: table.value(stl_group(t, p), seed, t) for t in tasks}
                dm = _delta_m(table, tasks, mtl, stl)
                if dm is not None:
                    per_seed.append(-dm)
                    dm_per_seed[seed] = dm
            benefit = mean_std(per_seed)
            rows.append({
                "correlation": p,
                "arch": arch,
                "benefit": _dict(benefit),
                "verdict": verdict_of_values(dm_per_seed).to_dict(),
                "gains": {t: gain(table.mean(group, t), table.mean(stl_group(t, p), t), table.higher.get(t, False))
                          for t in tasks},
                "mtl": {t: _dict(table.spread(group, t)) for t in tasks},
                "stl": {t: _dict(table.spread(stl_group(t, p), t)) for t in tasks},
            })
    return {"tasks": [table.task_row(t) for t in tasks], "correlations": list(spec.correlations),
            "archs": list(spec.archs), "rows": rows,
            "benefit_rule": "benefit = mean over tasks of the gain vs single-task (= -Delta_m), per seed; "
                            "mean and sample std over seeds"}


def study_document(spec: StudySpec, groups: Sequence[str], outcomes: Sequence[Outcome],
                   members: Sequence[dict[str, Any]], done: int | None = None) -> dict[str, Any]:
    """Everything ``result.json`` holds: the study asked for, its members, progress and result.

    ``members`` describe each member run (group, seed, label, state...);
    ``done`` is how many have ended (default: those with an outcome).
    """
    return {
        "kind": spec.kind,
        "spec": spec.to_dict(),
        "progress": {"done": len(outcomes) if done is None else done, "total": len(members),
                     "with_result": len(outcomes)},
        "members": list(members),
        "result": build_result(spec, groups, outcomes),
    }
