"""Putting runs in the queue, and reading it: the per-person cap, the fair order, each run's place.

``QueueMixin`` is the part of RunStore (store.py) that queues runs; the
fair rule itself (who goes next) is queue_order.py's, without SQL. The
functions below are the queries the rule needs, shared with claims.py.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Sequence

from ..config import ExperimentConfig
from ..owners import Owner, as_owner, fold_name
from ..packing.grouping import packing_of  # imports no torch until a key is computed
from . import queue_order
from .database import reading, writing
from .errors import QueueFullError
from .queue_order import QueuePlace
from .record import ACTIVE_STATES, FINISHED, QUEUED, RUNNING, RunRecord, new_run_id
from .rows import record_from_row, rows_by_id


class QueueMixin:
    """RunStore's queue: add runs (under a cap), count a person's, list the queue in its fair order."""

    db_path: Path

    def add_run(self, config: ExperimentConfig, label: str = "", owner: Owner | str = "anonymous",
                study_id: str | None = None, cap: int | None = None) -> RunRecord:
        """Queue a run; with ``cap``, refuse if ``owner`` already has that many queued or running.

        ``owner`` is an Owner (a browser's name and key) or a plain name (no
        key: the machine's user's namespace, see mtlcore.owners). The check
        and the insert happen in one transaction, so two quick clicks cannot
        both slip under the cap.
        """
        return self.add_runs([config], [label], owner, study_id, cap)[0]

    def add_runs(self, configs: Sequence[ExperimentConfig], labels: Sequence[str], owner: Owner | str = "anonymous",
                 study_id: str | None = None, cap: int | None = None) -> list[RunRecord]:
        """Queue several runs as one batch, in order; with ``cap``, refuse them all if ``owner`` is at the cap.

        The cap is checked once, before the batch: a batch is queued whole or
        not at all. A study queues the members that a worker will train
        together as one packed group this way (``Runner.submit_batch``); the
        batch then counts by its size, so its owner queues nothing more until
        it has trained.
        """
        rows = [(config.to_json(), label) for config, label in zip(configs, labels, strict=True)]
        # How each packs is decided here, once, and stored: workers claim by the key, never recompute it.
        packings = [packing_of(config) for config in configs]
        owner = as_owner(owner)
        while True:
            now = time.time()
            run_ids = [new_run_id(now) for _ in rows]
            try:
                with writing(self.db_path) as conn:
                    if cap is not None:
                        check_cap(conn, owner, cap)
                    conn.executemany(
                        "INSERT INTO runs (id, label, owner, owner_key, state, config, created_at, study_id, "
                        "pack_key, pack_batch, pack_on_cpu) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(run_id, label, owner.name, owner.key_hash, QUEUED, config_json, now, study_id,
                          packing.key, packing.batch, int(packing.on_cpu))
                         for run_id, (config_json, label), packing in zip(run_ids, rows, packings)],
                    )
                return [self.get_run(run_id) for run_id in run_ids]
            except sqlite3.IntegrityError:
                continue  # two runs drew the same id in the same millisecond: draw again

    def active_count(self, owner: Owner | str) -> int:
        """How many runs ``owner`` has queued or running (what the queue cap counts: per key, see active_count_of)."""
        with reading(self.db_path) as conn:
            return active_count_of(conn, as_owner(owner))

    def queued_runs(self, limit: int = 200) -> list[RunRecord]:
        """The queued runs in the order workers claim them (fair: round-robin between people), at most ``limit``.

        See mtlcore.runs.queue_order for the rule. A packing worker looks
        for its lead run's partners in this order, so when more runs pack
        than one group holds, each person's first run is among them first.
        """
        with reading(self.db_path) as conn:
            order = fair_order_ids(conn)[:limit]
            rows = {row["id"]: row for row in rows_by_id(conn, order)}
        return [record_from_row(rows[run_id]) for run_id in order if run_id in rows]

    def queue_places(self, now: float | None = None) -> dict[str, QueuePlace]:
        """Every queued run's place in the fair queue and its estimated start, by run id.

        Positions are the order in which workers would start the runs one at
        a time (``queue_order.fair_order``; packing can only start some
        earlier). The estimate: the live workers (at least one) each take
        the next run when their current one ends, every run lasting the
        median duration of the last RECENT_RUNS runs that finished
        (None while none has).
        """
        now = time.time() if now is None else now
        with reading(self.db_path) as conn:
            order = fair_order_ids(conn)
            ended = conn.execute(
                "SELECT finished_at - started_at FROM runs WHERE state = ? AND started_at IS NOT NULL "
                "AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?", (FINISHED, queue_order.RECENT_RUNS)
            ).fetchall()
            busy = conn.execute(
                "SELECT worker, MIN(started_at) FROM runs WHERE state = ? GROUP BY worker", (RUNNING,)
            ).fetchall()
        workers = len(self.live_workers())
        duration = queue_order.typical_duration([row[0] for row in ended])
        starts = queue_order.estimated_starts(order, [row[1] or now for row in busy], workers, duration, now)
        return {run_id: QueuePlace(i + 1, len(order), starts[run_id]) for i, run_id in enumerate(order)}


def active_count_of(conn: sqlite3.Connection, owner: Owner) -> int:
    """Runs of ``owner`` queued or running: those of its key; for a keyless owner, keyless runs of its folded name.

    Per key, not per typed name: "Alice", "alice " or a name with a
    zero-width space typed in the same browser all count against one cap.
    """
    if owner.key_hash is not None:
        return conn.execute(
            "SELECT COUNT(*) FROM runs WHERE owner_key = ? AND state IN (?, ?)", (owner.key_hash, *ACTIVE_STATES)
        ).fetchone()[0]
    rows = conn.execute(
        "SELECT owner FROM runs WHERE owner_key IS NULL AND state IN (?, ?)", ACTIVE_STATES
    ).fetchall()
    name = fold_name(owner.name)
    return sum(fold_name(row["owner"]) == name for row in rows)


def check_cap(conn: sqlite3.Connection, owner: Owner, cap: int) -> None:
    """Raise QueueFullError when ``owner`` already has ``cap`` runs queued or running."""
    active = active_count_of(conn, owner)
    if active >= cap:
        raise QueueFullError(
            f"{owner.name} already has {active} runs waiting or training (the limit is {cap} per "
            "person); stop one or wait for one to finish."
        )


def fair_order_ids(conn: sqlite3.Connection) -> list[str]:
    """The queued runs' ids in the order the fair rule starts them (queue_order.fair_order)."""
    rows = conn.execute(
        "SELECT id, owner, owner_key, created_at, rowid FROM runs WHERE state = ?", (QUEUED,)
    ).fetchall()
    if not rows:
        return []
    waiting = [queue_order.Waiting(row["id"], queue_order.owner_id(row["owner"], row["owner_key"]),
                                   row["created_at"], row["rowid"]) for row in rows]
    owners = {run.owner for run in waiting}
    keys = sorted({row["owner_key"] for row in rows if row["owner_key"] is not None})
    last_start: dict[str, float] = {}
    if keys:
        for key, started in conn.execute(
                f"SELECT owner_key, MAX(started_at) FROM runs WHERE started_at IS NOT NULL AND owner_key IN "
                f"({', '.join('?' * len(keys))}) GROUP BY owner_key", keys):
            last_start[queue_order.owner_id("", key)] = started
    if any(row["owner_key"] is None for row in rows):
        for name, started in conn.execute(
                "SELECT owner, MAX(started_at) FROM runs WHERE started_at IS NOT NULL AND owner_key IS NULL "
                "GROUP BY owner"):
            owner = queue_order.owner_id(name, None)
            if owner in owners:
                last_start[owner] = max(started, last_start.get(owner, started))
    return queue_order.fair_order(waiting, last_start)
