"""A study as it is read from the store: StudyRecord and its MemberStatus rows, in one query.

Reading never writes. A study whose every member has ended reads as
``finished`` at once; ``StudyStore.record_ending`` writes that into its row
later (whoever moves studies on). A member's state is its run's, except
that a member with no run yet is ``pending``, and a reused run of someone
else's that was cancelled or interrupted is ``pending`` again (the study
trains it again).
"""
from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..config import ExperimentConfig
from ..owners import Owner, fold_name
from ..runs import FINAL_STATES
from ..runs.database import reading
from .spec import StudySpec

RUNNING, FINISHED, CANCELLED = "running", "finished", "cancelled"
PENDING = "pending"  # a member not yet submitted (waiting for a queue slot)
FINISHED_RUN = "finished"
# A reused run of someone else's that ended like this is trained again by this study.
RETRAIN_STATES = ("cancelled", "interrupted")


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


def read_studies(db_path: Path, where: str, params: list, owner: Owner | str | None = None) -> list[StudyRecord]:
    """The studies whose row matches ``where`` (SQL on ``s``, the studies table), newest first, with their members.

    One query, whatever the number of studies: the studies joined with
    their members and each member's run. ``owner`` as in ``RunStore.list_runs``.
    """
    with reading(db_path) as conn:
        try:
            rows = conn.execute(
                f"SELECT {_STUDY_COLUMNS}, {_MEMBER_COLUMNS} FROM studies s "
                "LEFT JOIN study_members m ON m.study_id = s.id LEFT JOIN runs r ON r.id = m.run_id "
                f"WHERE {where} ORDER BY s.created_at DESC, s.rowid DESC, m.position", params,
            ).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            return []  # a read-only data folder made before studies existed: it has none
    if isinstance(owner, Owner):
        rows = [r for r in rows if owner.owns(r["owner"], r["owner_key"])]
    elif owner is not None:
        rows = [r for r in rows if fold_name(r["owner"]) == fold_name(owner)]
    by_study: dict[str, list] = {}
    for row in rows:
        by_study.setdefault(row["id"], []).append(row)
    records = []
    for study_rows in by_study.values():
        member_rows = [m for m in study_rows if m["position"] is not None]  # LEFT JOIN: a study with none
        members = [_member(m, study_rows[0]["state"]) for m in member_rows]
        records.append(_record(study_rows[0], members, member_rows))
    return records


# The columns ``_records`` selects: the study's own, then its member's and the member's run (prefixed).
_STUDY_COLUMNS = "s.id, s.kind, s.label, s.owner, s.owner_key, s.settings, s.state, s.created_at, s.finished_at"
_MEMBER_COLUMNS = ("m.position, m.grp, m.seed, m.label AS member_label, m.config AS member_config, "
                   "m.needs_diagnostics, m.run_id, r.state AS run_state, r.study_id AS run_study, "
                   "r.progress AS run_progress, r.summary AS run_summary, r.finished_at AS run_finished")


def _member(row, study_state: str) -> MemberStatus:
    run_id = row["run_id"]
    reused = run_id is not None and row["run_study"] != row["id"]
    if run_id is None:
        state = CANCELLED if study_state == CANCELLED else PENDING
    else:
        state = row["run_state"] or "failed"  # a run deleted from the store gives no result
        if reused and state in RETRAIN_STATES and study_state == RUNNING:
            state = PENDING  # someone else's run that will not finish: this study trains it again
    return MemberStatus(
        position=row["position"], group=row["grp"], seed=row["seed"], label=row["member_label"],
        config=_member_config(row["member_config"]), needs_diagnostics=bool(row["needs_diagnostics"]),
        run_id=run_id, state=state, progress=float(row["run_progress"] or 0.0),
        reused=reused,
        summary=json.loads(row["run_summary"]) if row["run_summary"] else None,
    )


@functools.lru_cache(maxsize=4096)
def _member_config(config_json: str) -> ExperimentConfig:
    """A member's config, parsed once per process (a study is read on every poll; configs are frozen)."""
    return ExperimentConfig.from_json(config_json)


def _record(row, members: list[MemberStatus], member_rows: Iterable = ()) -> StudyRecord:
    """The study as ``get`` reports it: a running one whose every member has ended is finished.

    Its ``finished_at`` is then when its last run ended (the row records it later: ``record_ending``).
    """
    state, finished_at = row["state"], row["finished_at"]
    if state == RUNNING and members and all(m.done for m in members):
        state = FINISHED
        finished_at = max((r["run_finished"] or 0.0 for r in member_rows), default=0.0) or None
    return StudyRecord(
        id=row["id"], kind=row["kind"], label=row["label"], owner=row["owner"],
        spec=StudySpec.from_dict(json.loads(row["settings"])), state=state,
        created_at=row["created_at"], finished_at=finished_at, members=tuple(members),
        owner_key=row["owner_key"],
    )
