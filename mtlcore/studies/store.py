"""A study as one object in the run store: its members, progress, result and cancel.

Two tables live beside the run store's own, in the same SQLite file (their
schema is ``mtlcore.runs.schema``'s, with every other table's):

    studies        one row per study: kind, settings (StudySpec JSON), owner, state
    study_members  one row per member run the plan needs; ``run_id`` points at
                   the run that gives its result, NULL while it waits

A member's run is either one this study submitted (that run's ``study_id``
is the study) or an identical run trained earlier for anything else: a
finished run is reused at once, a queued or running one is waited for.
"Identical" is ``mtlcore.compare.baseline_key``: the same config up to the
device and logging. Single-task baselines are where this pays most, since
every study on the same settings needs the same ones; in class, twenty
students starting the same study share one set of runs.

Members are submitted through the Runner, so a study obeys the same
per-person queue cap as single runs: with a cap of 3, a 12-run study keeps
3 runs queued or training and submits the next as one finishes. Members
that a worker will train together as one packed group (small models on a
shared dataset, ``Runner.next_batch``) are queued as one *batch* instead,
whole, when the owner is under the cap; the batch counts by its size, so
nothing more of that person's is queued until it has trained. One worker
then trains the batch at once: the default relatedness study (48 small
runs) goes through in three batches. Whoever looks at the study (the
Studies page polls ``advance_all``, and workers call it after every run)
moves it on; nothing is lost while nobody looks, it only waits. The worker
itself knows nothing of studies: the command line that starts it hands it
``advance_studies`` as its after-each-run hook.

Reading never writes: ``get`` and ``list`` report a study whose last run has
ended as ``finished`` at once, and ``advance`` (the one that moves a study
on) records that ending in its row.

    >>> studies = StudyStore(runner.store)
    >>> record = studies.start(spec, runner, owner="alice")
    >>> studies.get(record.id).progress_text
    '7 of 12 runs done'
    >>> studies.result(record.id)["result"]["delta_m"]
"""
from __future__ import annotations

import json
import time
from typing import Any, Iterable

from ..compare import baseline_key
from ..owners import Owner, as_owner
from ..runs import ACTIVE_STATES, NotOwnerError, QueueFullError, RunRecord, Runner, RunStore, StoreError
from ..runs.database import writing
from ..runs.record import new_run_id
from .plans import Member, plan
from .records import (  # noqa: F401  (the states and records are importable from here too)
    CANCELLED, FINISHED, FINISHED_RUN, PENDING, RETRAIN_STATES, RUNNING, MemberStatus, StudyRecord, read_studies,
)
from .report import Outcome, study_document
from .spec import StudySpec


class StudyStore:
    """Studies kept in the same SQLite file as the runs of ``store``."""

    def __init__(self, store: RunStore):
        self.store = store  # its database already has the studies' tables (mtlcore.runs.schema)

    def __repr__(self) -> str:
        return f"StudyStore({self.store!r})"

    # ----- starting ------------------------------------------------------------
    def create(self, spec: StudySpec, owner: Owner | str = "anonymous", label: str = "") -> StudyRecord:
        """Record a study and its planned members, pointing members at identical runs; submit nothing.

        Raises StudyError or ConfigError (from ``plans.plan``) for an impossible study.
        """
        members = plan(spec)
        owner = as_owner(owner)
        study_id, now = new_run_id(), time.time()
        label = label or default_label(spec)
        with writing(self.store.db_path) as conn:
            conn.execute(
                "INSERT INTO studies (id, kind, label, owner, owner_key, settings, state, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (study_id, spec.kind, label, owner.name, owner.key_hash, json.dumps(spec.to_dict()), RUNNING, now),
            )
            conn.executemany(
                "INSERT INTO study_members (study_id, position, grp, seed, label, config, needs_diagnostics) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(study_id, i, m.group, m.seed, m.label, m.config.to_json(), int(m.needs_diagnostics))
                 for i, m in enumerate(members)],
            )
        self._point_at_identical_runs(study_id, spec.reuse)
        return self.get(study_id)

    def start(self, spec: StudySpec, runner, owner: Owner | str = "anonymous", label: str = "") -> StudyRecord:
        """Create the study and submit as many members as the owner's queue allows."""
        record = self.create(spec, owner, label)
        self.advance(record.id, runner)
        return self.get(record.id)

    # ----- moving on -----------------------------------------------------------
    def advance(self, study_id: str, runner) -> int:
        """Submit waiting members until the owner's queue is full; return how many were submitted.

        Members go in plan order, as batches of those that train packed
        together (``_next_batch``), one member at a time otherwise. Members
        that reused someone else's run which then got cancelled or
        interrupted are put back to waiting first. Safe to call from several
        pages at once: a member claimed twice keeps one run, the other is cancelled.
        A study whose runs have all ended has that ending written (``record_ending``).
        """
        record = self.get(study_id)
        if record.state == FINISHED:
            self.record_ending(study_id)
        if record.state != RUNNING:
            return 0
        for member in record.members:
            if member.run_id is not None and member.state == PENDING:  # its reused run will not finish
                with writing(self.store.db_path) as conn:
                    conn.execute("UPDATE study_members SET run_id = NULL WHERE study_id = ? AND position = ? "
                                 "AND run_id = ?", (study_id, member.position, member.run_id))
        if not any(m.run_id is None for m in self.get(study_id).members):
            return 0
        self._point_at_identical_runs(study_id, record.spec.reuse)
        submitted = 0
        while runner.has_room(record.owned_by):  # checked first: forming a batch loads the members' data
            batch = self._next_batch(study_id, runner)
            if not batch:
                break
            try:
                labels = [f"{record.label} · {m.label}" for m in batch]
                run_ids = runner.submit_batch([m.config for m in batch], labels, owner=record.owned_by,
                                             study_id=study_id)
            except QueueFullError:
                break  # the rest wait for a free slot
            claimed = 0
            for member, run_id in zip(batch, run_ids):
                if self._claim(study_id, member.position, run_id):
                    claimed += 1
                else:
                    self.store.cancel_run(run_id)  # someone else claimed it, or the study was cancelled
            submitted += claimed
            if not claimed:
                break  # the study was cancelled meanwhile, or another page is moving it on
            # Later members with the same config (rare) share these runs.
            self._point_at_identical_runs(study_id, reuse=False)
        return submitted

    def _next_batch(self, study_id: str, runner) -> list[MemberStatus]:
        """The waiting members to queue next: the first in plan order and those a worker will pack with it.

        Members with the same config are queued once; ``_point_at_identical_runs``
        then points the others at that run.
        """
        distinct: dict[tuple[str, bool], MemberStatus] = {}
        for member in self.get(study_id).members:
            if member.run_id is None:
                distinct.setdefault((baseline_key(member.config), member.needs_diagnostics), member)
        waiting = list(distinct.values())
        if not waiting:
            return []
        return [waiting[i] for i in runner.next_batch([m.config for m in waiting])]

    def advance_all(self, runner, owner: Owner | str | None = None) -> int:
        """``advance`` every study whose row says running (of ``owner``, if given); return the runs submitted.

        A study whose last run has just ended gets its ending recorded here.
        """
        recorded_running = self._records("s.state = ?", [RUNNING], owner)
        return sum(self.advance(s.id, runner) for s in recorded_running)

    def record_ending(self, study_id: str) -> bool:
        """Write ``finished`` into the row of a study whose every member has ended; return whether it did.

        The one write behind what ``get`` already reports, so that the row
        agrees with it and ``advance_all`` (which asks the rows still
        running) stops looking at the study.
        """
        record = self.get(study_id)
        if record.state != FINISHED:
            return False
        with writing(self.store.db_path) as conn:
            changed = conn.execute("UPDATE studies SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
                                   (FINISHED, record.finished_at or time.time(), study_id, RUNNING)).rowcount
        return changed == 1

    # ----- reading -------------------------------------------------------------
    def get(self, study_id: str) -> StudyRecord:
        """One study with its members' current states (one query, no write); an unknown id raises StoreError.

        A study whose every member has ended is ``finished`` here at once,
        whether or not ``record_ending`` has written it yet.
        """
        records = self._records("s.id = ?", [study_id])
        if not records:
            raise StoreError(f"No study with id {study_id!r}; `python -m mtlcore study --help` explains studies.")
        return records[0]

    def list(self, owner: Owner | str | None = None, states: Iterable[str] | None = None) -> list[StudyRecord]:
        """Studies matching the filters, newest first, in one query; ``owner`` as in ``RunStore.list_runs``.

        ``states`` are the states ``get`` reports (a study whose runs have all
        ended is ``finished``, recorded or not).
        """
        if states is None:
            return self._records("1", [], owner)
        states = set(states)
        # A row still says running until its ending is recorded: look at those rows for "finished" too.
        stored = states | ({RUNNING} if FINISHED in states else set())
        if not stored:
            return []
        wanted = self._records(f"s.state IN ({', '.join('?' * len(stored))})", sorted(stored), owner)
        return [record for record in wanted if record.state in states]

    def _records(self, where: str, params: list, owner: Owner | str | None = None) -> list[StudyRecord]:
        """The studies whose row matches ``where`` (SQL on ``s``), with their members: one query (records.py)."""
        return read_studies(self.store.db_path, where, params, owner)

    def result(self, study_id: str) -> dict[str, Any]:
        """The study's result from the members finished so far (the content of result.json)."""
        record = self.get(study_id)
        outcomes = []
        for member in record.members:
            if member.state == FINISHED_RUN and member.summary and "test" in member.summary:
                epochs = self.store.epoch_metrics(member.run_id) if member.needs_diagnostics else []
                outcomes.append(Outcome.from_summary(member.group, member.seed, member.summary, epochs))
        members = [{"group": m.group, "seed": m.seed, "label": m.label, "run_id": m.run_id, "state": m.state,
                    "reused": m.reused} for m in record.members]
        document = study_document(record.spec, [m.group for m in record.members], outcomes, members, record.done)
        return {"id": record.id, "label": record.label, "owner": record.owner, "state": record.state, **document}

    # ----- stopping ------------------------------------------------------------
    def cancel(self, study_id: str, runner, owner: Owner | str | None = None) -> str:
        """Cancel the study and every unfinished run it submitted; return what happened, as a sentence.

        Finished runs and their results are kept. Runs reused from elsewhere
        are not this study's to stop and keep going. ``owner`` is who asks
        (None: the machine's user); only the study's owner, the teacher or
        the machine's user may cancel it (NotOwnerError otherwise).
        """
        record = self.get(study_id)
        by = as_owner(owner)
        if not by.may_change(record.owner, record.owner_key):
            raise NotOwnerError(by.refusal("this study", record.owner, record.owner_key, "cancel"))
        if record.state != RUNNING:
            return f"Study {study_id} has already ended ({record.state}); nothing to cancel."
        with writing(self.store.db_path) as conn:
            conn.execute("UPDATE studies SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
                         (CANCELLED, time.time(), study_id, RUNNING))
        stopped = 0
        for run in self.store.list_runs(study_id=study_id, states=ACTIVE_STATES):
            runner.cancel(run.id)
            stopped += 1
        kept = sum(m.state == FINISHED_RUN for m in record.members)
        return f"Study {study_id} cancelled: {stopped} unfinished run(s) stopped, {kept} finished run(s) kept."

    # ----- helpers -------------------------------------------------------------
    def _claim(self, study_id: str, position: int, run_id: str) -> bool:
        """Point a waiting member at ``run_id`` if it is still waiting and the study still running."""
        with writing(self.store.db_path) as conn:
            cursor = conn.execute(
                "UPDATE study_members SET run_id = ? WHERE study_id = ? AND position = ? AND run_id IS NULL "
                "AND EXISTS (SELECT 1 FROM studies WHERE id = ? AND state = ?)",
                (run_id, study_id, position, study_id, RUNNING),
            )
            return cursor.rowcount == 1

    def _point_at_identical_runs(self, study_id: str, reuse: bool) -> int:
        """Point waiting members at identical runs (any run if ``reuse``, else this study's); return how many."""
        record = self.get(study_id)
        waiting = [m for m in record.members if m.run_id is None]
        if not waiting:
            return 0
        states = (FINISHED_RUN, *ACTIVE_STATES)
        runs = self.store.list_runs(states=states) if reuse else self.store.list_runs(study_id=study_id, states=states)
        by_key: dict[str, list[RunRecord]] = {}  # one key per run, not one per run and member
        for run in runs:
            by_key.setdefault(baseline_key(run.config), []).append(run)
        pointed = 0
        for member in waiting:
            match = find_identical(by_key.get(baseline_key(member.config), []), member)
            if match is not None and self._claim(study_id, member.position, match.id):
                pointed += 1
        return pointed


def find_identical(runs: Iterable[RunRecord], member: Member | MemberStatus) -> RunRecord | None:
    """The best run among ``runs`` that gives ``member``'s result: finished first, then newest.

    Identical means the same ``baseline_key`` (config up to device and
    logging); a member that needs diagnostics only takes a run that logged them.
    """
    wanted = baseline_key(member.config)
    matches = [r for r in runs if baseline_key(r.config) == wanted
               and (not member.needs_diagnostics or r.config.train.diagnostics_every > 0)]
    if not matches:
        return None
    return max(matches, key=lambda r: (r.state == FINISHED_RUN, r.created_at or 0.0))


def default_label(spec: StudySpec) -> str:
    """e.g. ``stl-vs-mtl · shapes: shape, color, size``."""
    return f"{spec.kind} · {spec.base.dataset.name}: {', '.join(spec.base.tasks)}"


def advance_studies(store: RunStore) -> int:
    """Move every running study on (``advance_all``); return how many runs were submitted.

    The hook the command line hands a worker (``run_worker(after_each_run=...)``):
    after every run or packed group it moves studies on, so a study finishes
    even with no browser tab open, and its next batch is queued before the
    next claim. Members go through a Runner that starts no workers, so each
    person's queue cap applies (a packable batch counts by its size).
    """
    return StudyStore(store).advance_all(Runner(store, max_workers=0))
