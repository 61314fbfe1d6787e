"""Which workers are alive: their rows, their heartbeats, and the runs a vanished one leaves behind.

``WorkersMixin`` is the part of RunStore (store.py) that keeps the
``workers`` table. A worker beats every HEARTBEAT_EVERY seconds for itself
and for each run it trains; one silent for STALE_AFTER (any host), or whose
process is gone (this host), is presumed dead, and ``recover_orphans``
marks its runs ``interrupted`` and takes their claims away (claims.py).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .claims import HEARTBEAT_EVERY, STALE_AFTER, hold
from .database import reading, writing
from .errors import ClaimLost
from .processes import host_name, pid_alive
from .record import INTERRUPTED, RUNNING

__all__ = ["HEARTBEAT_EVERY", "INTERRUPTED_MESSAGE", "STALE_AFTER", "WorkersMixin", "alive"]

INTERRUPTED_MESSAGE = (
    "Its worker process stopped answering while it was training (killed, crashed, paused or asleep past the "
    "heartbeat timeout, or the machine restarted); the metrics logged so far are kept."
)


class WorkersMixin:
    """RunStore's workers: register, beat, list the live ones, start missing ones, recover orphaned runs."""

    db_path: Path

    def register_worker(self, worker: str, pid: int, device: str | None = None) -> None:
        """Record (or refresh) a live worker process."""
        now = time.time()
        with writing(self.db_path) as conn:
            conn.execute(
                "INSERT INTO workers (id, host, pid, device, started_at, heartbeat) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET heartbeat = excluded.heartbeat",
                (worker, host_name(), pid, device, now, now),
            )

    def remove_worker(self, worker: str) -> None:
        with writing(self.db_path) as conn:
            conn.execute("DELETE FROM workers WHERE id = ?", (worker,))

    def heartbeat(self, worker: str, run_ids: str | Iterable[str] | Mapping[str, str | None] | None = None
                  ) -> list[str]:
        """A sign of life from ``worker`` and from the run (or packed runs) it is training.

        Every run's own heartbeat is refreshed: ``recover_orphans`` judges each
        running run by it, so a worker that dies leaves all of its runs
        ``interrupted``. The worker's row names the first of them.

        ``run_ids`` may map each run to the claim the worker holds on it:
        then only runs still held are refreshed, and the ids of those whose
        claim was taken away are returned (the worker stops them).
        """
        if isinstance(run_ids, Mapping):
            claims = {run_id: claim for run_id, claim in run_ids.items() if run_id}
        else:
            claims = {run_id: None for run_id in ([run_ids] if isinstance(run_ids, str) else run_ids or ()) if run_id}
        run_ids = list(claims)
        now = time.time()
        current = run_ids[0] if run_ids else None
        with writing(self.db_path) as conn:
            beat = conn.execute("UPDATE workers SET heartbeat = ?, run_id = ? WHERE id = ?", (now, current, worker))
            if beat.rowcount == 0:
                # Recovery dropped us while we were silent (a laptop asleep, say): count us again,
                # or ensure_workers would start one worker too many.
                host, _, pid = worker.rpartition(":")
                conn.execute(
                    "INSERT INTO workers (id, host, pid, started_at, heartbeat, run_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (worker, host, int(pid), now, now, current),
                )
            conn.executemany(
                "UPDATE runs SET heartbeat = ? WHERE id = ? AND state = ? AND (? IS NULL OR claim = ?)",
                [(now, run_id, RUNNING, claim, claim) for run_id, claim in claims.items()],
            )
            lost = []
            for run_id, claim in claims.items():
                try:
                    hold(conn, run_id, claim)
                except ClaimLost:
                    lost.append(run_id)
        return lost

    def live_workers(self) -> list[dict[str, Any]]:
        """Workers that are alive: recent heartbeat and, on this host, a live process."""
        with reading(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM workers ORDER BY started_at").fetchall()
        now = time.time()
        return [dict(row) for row in rows if alive(row["host"], row["pid"], row["heartbeat"], now)]

    def start_missing_workers(self, devices: list[str | None], start: Callable[[str | None], int]) -> int:
        """Start workers until ``len(devices)`` are alive; return how many were started.

        ``start(device)`` launches one worker process and returns its pid. It
        runs while this store holds the write lock, so two pages calling this
        at once cannot both start the missing worker.
        """
        now = time.time()
        started = 0
        with writing(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM workers").fetchall()
            dead = [row["id"] for row in rows if not alive(row["host"], row["pid"], row["heartbeat"], now)]
            conn.executemany("DELETE FROM workers WHERE id = ?", [(worker,) for worker in dead])
            busy = [row["device"] for row in rows if row["id"] not in dead]
            free = list(devices)
            for device in busy:
                if device in free:
                    free.remove(device)
            for device in free[: max(0, len(devices) - len(busy))]:
                pid = start(device)
                conn.execute(
                    "INSERT OR REPLACE INTO workers (id, host, pid, device, started_at, heartbeat) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (f"{host_name()}:{pid}", host_name(), pid, device, now, now),
                )
                started += 1
        return started

    def recover_orphans(self) -> list[str]:
        """Mark running runs whose worker vanished as ``interrupted``; return their ids.

        A worker has vanished when its process is gone from this host, or when
        it has not sent a heartbeat for STALE_AFTER seconds (any host).
        """
        now = time.time()
        with writing(self.db_path) as conn:
            rows = conn.execute(
                "SELECT id, worker, heartbeat, started_at FROM runs WHERE state = ?", (RUNNING,)
            ).fetchall()
            orphans = []
            for row in rows:
                host, _, pid = (row["worker"] or ":0").rpartition(":")
                last_sign = row["heartbeat"] or row["started_at"] or 0.0
                if not alive(host, int(pid or 0), last_sign, now):
                    orphans.append(row["id"])
            # claim = NULL: the worker's claim is taken away, so a worker that was only paused
            # (SIGSTOP, a laptop lid) has every later write refused when it wakes (ClaimLost).
            conn.executemany(
                "UPDATE runs SET state = ?, message = ?, finished_at = ?, claim = NULL WHERE id = ?",
                [(INTERRUPTED, INTERRUPTED_MESSAGE, now, run_id) for run_id in orphans],
            )
            workers = conn.execute("SELECT id, host, pid, heartbeat FROM workers").fetchall()
            conn.executemany(
                "DELETE FROM workers WHERE id = ?",
                [(w["id"],) for w in workers if not alive(w["host"], w["pid"], w["heartbeat"], now)],
            )
        for run_id in orphans:
            self._keep_row_file(run_id)
        return orphans


def alive(host: str, pid: int, heartbeat: float, now: float) -> bool:
    """A worker is alive if it beat recently and, when it runs on this host, its process exists."""
    if now - (heartbeat or 0.0) > STALE_AFTER:
        return False
    return host != host_name() or pid_alive(pid)
