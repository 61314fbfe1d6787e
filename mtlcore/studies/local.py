"""Running a study in the foreground, in this process: the command line's path.

No worker and no queue. First every member that needs training is trained
with ``mtlcore.packing.fit_many``, which trains small members that share a
dataset together as one stacked model (and the rest one after another),
reporting a line as each finishes; then every member reports its result.
A member identical to another in the same call (``compare.baseline_key``)
is trained once; given a run store, a member identical to a run finished
there (say, by the app) reuses that run.
"""
from __future__ import annotations

from typing import Any, Callable

from ..compare import baseline_key
from ..engine import Callback, FitResult, TrainingRun
from ..packing import fit_many
from ..runs import RunStore
from ..runs.runner import worker_threads
from .plans import Member, plan
from .report import Outcome, study_document
from .spec import StudySpec
from .store import find_identical


class EpochLogs(Callback):
    """Keeps every epoch's logs (the lookahead affinity lives there) and how the run ended."""

    def __init__(self):
        self.epochs: list[dict[str, Any]] = []
        self.ended: tuple[str, dict] | None = None  # (status, summary) once the run is over

    def on_epoch_end(self, run, logs: dict[str, Any]) -> None:
        self.epochs.append(logs)

    def on_fit_end(self, run, result: FitResult) -> None:
        self.ended = (result.status, result.summary)


class Announce(Callback):
    """Reports one line when a member's training ends (packed members end together)."""

    def __init__(self, report: Callable[[str], None], label: str, number: int, total: int):
        self.report, self.label, self.number, self.total = report, label, number, total

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        self.report(f"  trained {self.number}/{self.total}: {self.label} ({result.status}, "
                    f"{result.summary.get('seconds', 0):.1f} s)")


def train_missing(members: list[Member], stored: list, report: Callable[[str], None]) -> tuple[dict, bool]:
    """Train each distinct member that no stored run already answers.

    Returns ``{key: (state, summary, epochs)}`` of the runs that ended, and
    whether Ctrl-C interrupted the training (the runs that ended keep their
    results).
    """
    needed: dict[tuple[str, bool], Member] = {}
    for member in members:
        key = (baseline_key(member.config), member.needs_diagnostics)
        if key not in needed and find_identical(stored, member) is None:
            needed[key] = member
    logs = [EpochLogs() for _ in needed]
    interrupted = False
    if needed:
        report(f"Training {len(needed)} runs (small ones that share a dataset together, as one stacked model)...")
        callbacks = [[log, Announce(report, m.label, i, len(needed))]
                     for i, (log, m) in enumerate(zip(logs, needed.values()), 1)]
        try:
            with worker_threads():  # a worker may be training beside us: as many threads as one has
                fit_many([m.config for m in needed.values()], callbacks)
        except KeyboardInterrupt:
            interrupted = True
            report("Interrupted: members not trained yet are reported as cancelled.")
    trained = {key: (*log.ended, log.epochs) for key, log in zip(needed, logs) if log.ended is not None}
    return trained, interrupted


def run_study(spec: StudySpec, report: Callable[[str], None] = print,
              store: RunStore | None = None) -> dict[str, Any]:
    """Train (or reuse) every member of ``spec``; return the study document (``result.json``).

    ``report`` receives a line as each run ends and one line per member.
    Ctrl-C abandons the runs still training and returns the partial
    document, with ``"interrupted": true``; finished members keep their
    results.
    """
    members = plan(spec)
    stored = store.list_runs(states=("finished",)) if (store is not None and spec.reuse) else []
    outcomes: list[Outcome] = []
    described: list[dict[str, Any]] = []
    trained, interrupted = train_missing(members, stored, report)
    earlier: dict[tuple[str, bool], tuple[str, dict, list]] = {}  # results already reported in this call
    for number, member in enumerate(members, 1):
        key = (baseline_key(member.config), member.needs_diagnostics)
        state, summary, epochs, source = _result_of(member, key, earlier, trained, stored, store)
        if source == "not trained":
            report(f"[{number}/{len(members)}] {member.label}: interrupted")
            described.append(_describe(member, "cancelled", "interrupted"))
            continue
        earlier.setdefault(key, (state, summary, epochs))
        if state == "finished":
            outcomes.append(Outcome.from_summary(member.group, member.seed, summary, epochs))
        seconds = float(summary.get("seconds", 0.0))  # of its own training (packed runs share theirs)
        report(f"[{number}/{len(members)}] {member.label}: {_said(state, summary, source, seconds)}")
        described.append(_describe(member, state, source))
    done = sum(m["state"] != "cancelled" for m in described)
    document = study_document(spec, [m.group for m in members], outcomes, described, done)
    document["interrupted"] = interrupted
    return document


def _result_of(member: Member, key, earlier, trained, stored, store) -> tuple[str, dict, list, str]:
    """(state, summary, epoch logs, where it came from) of one member."""
    if key in earlier:
        state, summary, epochs = earlier[key]
        return state, summary, epochs, "same run as an earlier member"
    if key in trained:
        return (*trained[key], "trained")
    match = find_identical(stored, member)
    if match is not None:
        epochs = store.epoch_metrics(match.id) if member.needs_diagnostics else []
        return match.state, match.summary or {}, epochs, f"reused run {match.id}"
    return "cancelled", {}, [], "not trained"


def _said(state: str, summary: dict, source: str, seconds: float) -> str:
    """One line: where the result came from and the test metrics, or why there are none."""
    if state != "finished":
        return f"{state}: {summary.get('message', '')}"
    values = []
    for task, metrics in summary.get("test", {}).items():
        metric = summary.get("tasks", {}).get(task, {}).get("metric", "accuracy" if "accuracy" in metrics else "mae")
        values.append(f"{task} {metric} {metrics[metric]:.4f}")
    timing = f" in {seconds:.2f} s" if source == "trained" else ""
    return f"{source}{timing} · " + ", ".join(values)


def _describe(member: Member, state: str, source: str) -> dict[str, Any]:
    return {"group": member.group, "seed": member.seed, "label": member.label, "state": state, "source": source}
