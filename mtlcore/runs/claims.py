"""A worker's claim on a run: taking queued runs, the claim token, and fencing every later write.

A worker that claims a run gets a fresh token (``new_claim``) stored in the
run's row. Every write it makes afterwards names the token, and ``hold``
refuses the write (ClaimLost) once the row holds another token or none: a
worker paused past STALE_AFTER finds its runs marked interrupted by
recovery (liveness.py) when it wakes, and can no longer overwrite that.

``ClaimsMixin`` is the part of RunStore (store.py) that claims runs.
"""
from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ..packing.grouping import part_size  # imports no torch
from . import run_files
from .database import reading, writing
from .errors import ClaimLost
from .queueing import fair_order_ids
from .record import INTERRUPTED, QUEUED, RUNNING, RunRecord

# A worker beats every HEARTBEAT_EVERY seconds; one silent for STALE_AFTER is presumed dead and loses its claims.
HEARTBEAT_EVERY = 2.0
STALE_AFTER = 30.0
ROLLED_BACK_MESSAGE = (
    "The store had lost this run's progress (its database was rolled back or replaced, e.g. its -wal file "
    "was deleted) while its folder holds its metrics; `python -m mtlcore repair` restores them."
)


class ClaimsMixin:
    """RunStore's claiming: the next run of the fair queue, a packed group's partners, the claim checks."""

    db_path: Path

    def claim_next(self, worker: str) -> RunRecord | None:
        """Atomically move the next queued run under the fair rule to ``running`` for ``worker``; None if none.

        The next run is the first of ``queue_order.fair_order``: the oldest
        queued run of the person whose last start is oldest (round-robin
        between people; see mtlcore.runs.queue_order). The choice and the
        claim are one write transaction, so two workers never take one run.
        """
        now = time.time()
        with writing(self.db_path) as conn:
            chosen = None
            for run_id in fair_order_ids(conn):
                row = conn.execute("SELECT started_at FROM runs WHERE id = ?", (run_id,)).fetchone()
                if not self._set_aside_if_rolled_back(conn, run_id, row["started_at"], now):
                    chosen = run_id
                    break
            if chosen is None:
                return None
            conn.execute(
                "UPDATE runs SET state = ?, started_at = ?, heartbeat = ?, worker = ?, message = '', claim = ? "
                "WHERE id = ?",
                (RUNNING, now, now, worker, new_claim(), chosen),
            )
            conn.execute("UPDATE workers SET run_id = ?, heartbeat = ? WHERE id = ?", (chosen, now, worker))
        self._keep_row_file(chosen)
        return self.get_run(chosen)

    def claim_runs(self, worker: str, run_ids: Iterable[str]) -> list[RunRecord]:
        """Move those of ``run_ids`` that are still queued to ``running`` for ``worker``; return them.

        A worker that trains several runs as one packed group claims the
        others this way after ``claim_next``. Each row is only taken while it
        is still queued, in one transaction, so two workers never claim the
        same run: a run another worker took (or someone cancelled) meanwhile
        is simply not returned.
        """
        now = time.time()
        claimed = []
        with writing(self.db_path) as conn:
            for run_id in run_ids:
                row = conn.execute("SELECT started_at FROM runs WHERE id = ? AND state = ?", (run_id, QUEUED)).fetchone()
                if row is None or self._set_aside_if_rolled_back(conn, run_id, row["started_at"], now):
                    continue
                self._mark_claimed(conn, run_id, worker, now)
                claimed.append(run_id)
        return self._claimed(claimed)

    def claim_pack(self, worker: str, lead: RunRecord, limit: int | None = None) -> list[RunRecord]:
        """Claim the queued runs that train packed with ``lead`` (already claimed by ``worker``); return them.

        One query finds them: the queued runs with the lead's stored pack key
        (decided when each was queued: mtlcore.packing.grouping), whoever's
        they are; no dataset is loaded and no model built. They are taken in
        the fair queue's order, so when more pack than one pack holds, each
        person's first run comes first; the lead and they are cut into equal
        packs of at most ``limit`` (None: the lead's stored pack_batch) and
        the first pack's runs claimed in the same transaction. A lead with no
        key trains alone and claims nothing.
        """
        if lead.pack_key is None:
            return []
        now = time.time()
        claimed: list[str] = []
        with writing(self.db_path) as conn:
            same = {row["id"]: row["started_at"] for row in conn.execute(
                "SELECT id, started_at FROM runs WHERE state = ? AND pack_key = ? AND id != ?",
                (QUEUED, lead.pack_key, lead.id))}
            if not same:
                return []
            order = [run_id for run_id in fair_order_ids(conn) if run_id in same]
            wanted = part_size(1 + len(order), limit or lead.pack_batch or 1) - 1
            for run_id in order:
                if len(claimed) == wanted:
                    break
                if self._set_aside_if_rolled_back(conn, run_id, same[run_id], now):
                    continue
                self._mark_claimed(conn, run_id, worker, now)
                claimed.append(run_id)
        return self._claimed(claimed)

    def _mark_claimed(self, conn: sqlite3.Connection, run_id: str, worker: str, now: float) -> None:
        """One queued run becomes ``running`` under ``worker``, with a fresh claim token (errors.ClaimLost)."""
        conn.execute(
            "UPDATE runs SET state = ?, started_at = ?, heartbeat = ?, worker = ?, message = '', claim = ? "
            "WHERE id = ?",
            (RUNNING, now, now, worker, new_claim(), run_id),
        )

    def _claimed(self, run_ids: list[str]) -> list[RunRecord]:
        """After the claiming transaction: each run folder's copy of its row, then the runs as records."""
        for run_id in run_ids:
            self._keep_row_file(run_id)
        return [self.get_run(run_id) for run_id in run_ids]

    def _set_aside_if_rolled_back(self, conn: sqlite3.Connection, run_id: str, started_at: float | None,
                                  now: float) -> bool:
        """Mark a queued run ``interrupted`` instead of training it again if its folder shows it trained.

        A queued run that never started has no folder. One whose folder holds
        metrics or a checkpoint was rolled back by a damaged store (a deleted
        ``-wal`` file): training it again would overwrite the files that
        ``repair`` can restore it from. Returns True when it was set aside.
        """
        if started_at is not None or not run_files.has_logged_progress(self.run_dir(run_id)):
            return False
        conn.execute("UPDATE runs SET state = ?, message = ?, finished_at = ? WHERE id = ?",
                     (INTERRUPTED, ROLLED_BACK_MESSAGE, now, run_id))
        return True

    def cancel_requested(self, run_id: str, claim: str | None = None) -> bool:
        """Whether someone asked the run to stop; with ``claim``, ClaimLost if the caller no longer holds it."""
        with reading(self.db_path) as conn:
            hold(conn, run_id, claim)
            row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def check_claim(self, run_id: str, claim: str | None) -> None:
        """ClaimLost unless ``claim`` is still the run's (e.g. before a checkpoint replaces the last one)."""
        with reading(self.db_path) as conn:
            hold(conn, run_id, claim)


def new_claim() -> str:
    """A fresh claim token: the run is held by whoever was given it, until recovery takes it away."""
    return secrets.token_hex(8)


def hold(conn: sqlite3.Connection, run_id: str, claim: str | None) -> None:
    """Raise ClaimLost unless ``claim`` is still the run's (None: the caller is not a worker; no check)."""
    if claim is None:
        return
    row = conn.execute("SELECT state, claim FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise ClaimLost(f"Run {run_id} is no longer in the store (it was deleted, or the store was replaced), "
                        "so this worker stops training it.")
    if row["claim"] != claim:
        raise ClaimLost(
            f"Run {run_id} was taken away from this worker: the store now says {row['state']} (it was marked so "
            f"while this worker was silent for more than {STALE_AFTER:.0f} s, paused or asleep, or the store was "
            f"rolled back), so this worker stops training it and leaves it {row['state']}."
        )
