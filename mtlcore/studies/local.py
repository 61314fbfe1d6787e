"""Running a study in the foreground, in this process: the command line's path.

No worker and no queue: members train one after another with ``fit``, each
reporting one progress line. A member identical to one trained earlier in
the same call (``compare.baseline_key``) reuses its result; given a run
store, so does a member identical to a run finished there (say, by the app).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ..compare import baseline_key
from ..engine import Callback, fit
from ..runs import RunStore
from .plans import Member, plan
from .report import Outcome, study_document
from .spec import StudySpec
from .store import find_identical


class EpochLogs(Callback):
    """Keeps every epoch's logs (the lookahead affinity lives there)."""

    def __init__(self):
        self.epochs: list[dict[str, Any]] = []

    def on_epoch_end(self, run, logs: dict[str, Any]) -> None:
        self.epochs.append(logs)


def run_study(spec: StudySpec, report: Callable[[str], None] = print,
              store: RunStore | None = None) -> dict[str, Any]:
    """Train (or reuse) every member of ``spec``; return the study document (``result.json``).

    ``report`` receives one line per member. Ctrl-C stops after the current
    member's run is abandoned and returns the partial document, with
    ``"interrupted": true``; finished members keep their results.
    """
    members = plan(spec)
    stored = store.list_runs(states=("finished",)) if (store is not None and spec.reuse) else []
    earlier: dict[tuple[str, bool], tuple[str, dict, list]] = {}  # this call's results by config
    outcomes: list[Outcome] = []
    described: list[dict[str, Any]] = []
    interrupted = False
    for number, member in enumerate(members, 1):
        if interrupted:
            described.append(_describe(member, "cancelled", "not started"))
            continue
        key = (baseline_key(member.config), member.needs_diagnostics)
        started = time.perf_counter()
        try:
            state, summary, epochs, source = _result_of(member, key, earlier, stored, store)
        except KeyboardInterrupt:
            interrupted = True
            report(f"[{number}/{len(members)}] {member.label}: interrupted")
            described.append(_describe(member, "cancelled", "interrupted"))
            continue
        earlier.setdefault(key, (state, summary, epochs))
        if state == "finished":
            outcomes.append(Outcome.from_summary(member.group, member.seed, summary, epochs))
        seconds = time.perf_counter() - started
        report(f"[{number}/{len(members)}] {member.label}: {_said(state, summary, source, seconds)}")
        described.append(_describe(member, state, source))
    done = sum(m["state"] != "cancelled" for m in described)
    document = study_document(spec, [m.group for m in members], outcomes, described, done)
    document["interrupted"] = interrupted
    return document


def _result_of(member: Member, key, earlier, stored, store) -> tuple[str, dict, list, str]:
    """(state, summary, epoch logs, where it came from) of one member."""
    if key in earlier:
        state, summary, epochs = earlier[key]
        return state, summary, epochs, "same run as an earlier member"
    match = find_identical(stored, member)
    if match is not None:
        epochs = store.epoch_metrics(match.id) if member.needs_diagnostics else []
        return match.state, match.summary or {}, epochs, f"reused run {match.id}"
    logs = EpochLogs()
    result = fit(member.config, [logs])
    return result.status, result.summary, logs.epochs, "trained"


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
