"""A study as one object in the run store: its members, progress, result and cancel.

Two tables live beside the run store's own, in the same SQLite file:

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
moves it on; nothing is lost while nobody looks, it only waits.

    >>> studies = StudyStore(runner.store)
    >>> record = studies.start(spec, runner, owner="alice")
    >>> studies.get(record.id).progress_text
    '7 of 12 runs done'
    >>> studies.result(record.id)["result"]["delta_m"]
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from ..compare import baseline_key
from ..config import ExperimentConfig
from ..owners import Owner, as_owner, fold_name
from ..runs import ACTIVE_STATES, FINAL_STATES, NotOwnerError, QueueFullError, RunRecord, RunStore, StoreError
from ..runs.database import add_missing_columns, reading, writing
from ..runs.record import new_run_id
from .plans import Member, plan
from .report import Outcome, study_document
from .spec import StudySpec

RUNNING, FINISHED, CANCELLED = "running", "finished", "cancelled"
PENDING = "pending"  # a member not yet submitted (waiting for a queue slot)
FINISHED_RUN = "finished"
# A reused run of someone else's that ended like this is trained again by this study.
RETRAIN_STATES = ("cancelled", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL,
    settings TEXT NOT NULL,          -- StudySpec as JSON
    state TEXT NOT NULL,             -- running, finished or cancelled
    created_at REAL NOT NULL,
    finished_at REAL,
    owner_key TEXT                   -- SHA-256 of the owner's browser key (mtlcore.owners); NULL: none
);
CREATE INDEX IF NOT EXISTS studies_by_owner ON studies(owner, created_at);

CREATE TABLE IF NOT EXISTS study_members (
    study_id TEXT NOT NULL,
    position INTEGER NOT NULL,       -- order in the plan
    grp TEXT NOT NULL,               -- plans.py's group name
    seed INTEGER NOT NULL,
    label TEXT NOT NULL,
    config TEXT NOT NULL,            -- ExperimentConfig as JSON
    needs_diagnostics INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,                     -- NULL until submitted or pointed at an identical run
    PRIMARY KEY (study_id, position)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class MemberStatus:
    """One member of a study and the state of the run behind it."""

    position: int
    group: str
    seed: int
    label: str
    config: ExperimentConfig
    needs_diagnostics: bool
    run_id: str | None
    state: str  # "pending" until submitted (or while a reused run must be retrained), then the run's state
    progress: float
    reused: bool  # the run was trained for something else
    summary: dict[str, Any] | None

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class StudyRecord:
    """A snapshot of one study and its members."""

    id: str
    kind: str
    label: str
    owner: str
    spec: StudySpec
    state: str  # running, finished or cancelled
    created_at: float
    finished_at: float | None
    members: tuple[MemberStatus, ...]
    owner_key: str | None = None  # SHA-256 of the owner's browser key; None: no key

    @property
    def owned_by(self) -> Owner:
        """The owner whose queue the study's runs go into (and who may cancel it)."""
        return Owner(self.owner, self.owner_key)

    @property
    def done(self) -> int:
        return sum(m.done for m in self.members)

    @property
    def total(self) -> int:
        return len(self.members)

    @property
    def failed(self) -> int:
        return sum(m.done and m.state != FINISHED_RUN for m in self.members)

    @property
    def progress_text(self) -> str:
        """e.g. ``7 of 12 runs done`` (and how many failed)."""
        text = f"{self.done} of {self.total} runs done"
        return text + (f" ({self.failed} without a result)" if self.failed else "")


class StudyStore:
    """Studies kept in the same SQLite file as the runs of ``store``."""

    def __init__(self, store: RunStore):
        self.store = store
        with reading(store.db_path) as conn:  # autocommit: executescript manages its own transaction
            conn.executescript(SCHEMA)
            add_missing_columns(conn)  # a studies table made by an older version lacks owner_key

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
        """
        record = self.get(study_id)
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
        """``advance`` every running study (of ``owner``, if given); return how many runs were submitted."""
        return sum(self.advance(s.id, runner) for s in self.list(owner=owner, states=(RUNNING,)))

    # ----- reading -------------------------------------------------------------
    def get(self, study_id: str) -> StudyRecord:
        """One study with its members' current states; an unknown id raises StoreError."""
        with reading(self.store.db_path) as conn:
            row = conn.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone()
            if row is None:
                raise StoreError(f"No study with id {study_id!r}; `python -m mtlcore study --help` explains studies.")
            members = conn.execute(
                "SELECT m.*, r.state AS run_state, r.study_id AS run_study, r.progress AS run_progress, "
                "r.summary AS run_summary FROM study_members m LEFT JOIN runs r ON r.id = m.run_id "
                "WHERE m.study_id = ? ORDER BY m.position", (study_id,),
            ).fetchall()
        record = _record(row, [_member(m, row["state"]) for m in members])
        if record.state == RUNNING and record.members and all(m.done for m in record.members):
            # The last run has just ended: the study is finished (recorded once, for lists).
            with writing(self.store.db_path) as conn:
                conn.execute("UPDATE studies SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
                             (FINISHED, time.time(), study_id, RUNNING))
            return self.get(study_id)
        return record

    def list(self, owner: Owner | str | None = None, states: Iterable[str] | None = None) -> list[StudyRecord]:
        """Studies matching the filters, newest first; ``owner`` as in ``RunStore.list_runs``."""
        where, params = [], []
        if states is not None:
            states = list(states)
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        sql = "SELECT id, owner, owner_key FROM studies" + (" WHERE " + " AND ".join(where) if where else "")
        with reading(self.store.db_path) as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC, rowid DESC", params).fetchall()
        if isinstance(owner, Owner):
            rows = [r for r in rows if owner.owns(r["owner"], r["owner_key"])]
        elif owner is not None:
            rows = [r for r in rows if fold_name(r["owner"]) == fold_name(owner)]
        return [self.get(r["id"]) for r in rows]

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


def _member(row, study_state: str) -> MemberStatus:
    run_id = row["run_id"]
    reused = run_id is not None and row["run_study"] != row["study_id"]
    if run_id is None:
        state = CANCELLED if study_state == CANCELLED else PENDING
    else:
        state = row["run_state"] or "failed"  # a run deleted from the store gives no result
        if reused and state in RETRAIN_STATES and study_state == RUNNING:
            state = PENDING  # someone else's run that will not finish: this study trains it again
    return MemberStatus(
        position=row["position"], group=row["grp"], seed=row["seed"], label=row["label"],
        config=_member_config(row["config"]), needs_diagnostics=bool(row["needs_diagnostics"]),
        run_id=run_id, state=state, progress=float(row["run_progress"] or 0.0),
        reused=reused,
        summary=json.loads(row["run_summary"]) if row["run_summary"] else None,
    )


@functools.lru_cache(maxsize=4096)
def _member_config(config_json: str) -> ExperimentConfig:
    """A member's config, parsed once per process (a study is read on every poll; configs are frozen)."""
    return ExperimentConfig.from_json(config_json)


def _record(row, members: list[MemberStatus]) -> StudyRecord:
    return StudyRecord(
        id=row["id"], kind=row["kind"], label=row["label"], owner=row["owner"],
        spec=StudySpec.from_dict(json.loads(row["settings"])), state=row["state"],
        created_at=row["created_at"], finished_at=row["finished_at"], members=tuple(members),
        owner_key=row["owner_key"],
    )
