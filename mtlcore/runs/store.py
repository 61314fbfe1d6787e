"""The run store: every background run, its metrics and its worker, in one SQLite file.

The store is the single source of truth. Pages read it, workers write it,
and because it is a file it survives closed tabs and app restarts:

    >>> store = RunStore("/tmp/mtl-home")
    >>> [(r.id, r.state) for r in store.list_runs(owner="alice")]
    >>> store.step_metrics(run_id, after_step=120)   # only the new points

Every method opens its own connection (see database.py), so one store object
may be shared by threads, and any number of processes may open the same home.
"""
from __future__ import annotations

import functools
import json
import secrets
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..config import ExperimentConfig
from ..owners import Owner, as_owner, fold_name
from . import database, queue_order, run_files
from .database import reading, writing
from .errors import ClaimLost, NotOwnerError, QueueFullError, StoreError, StoreUnwritable
from .home import resolve_home
from .processes import host_name, pid_alive
from .queue_order import QueuePlace
from .record import (
    ACTIVE_STATES, CANCELLED, FINAL_STATES, FINISHED, INTERRUPTED, QUEUED, RUNNING, RunRecord, new_run_id,
)

# A worker beats every HEARTBEAT_EVERY seconds; one silent for STALE_AFTER is presumed dead.
HEARTBEAT_EVERY = 2.0
STALE_AFTER = 30.0
INTERRUPTED_MESSAGE = (
    "Its worker process stopped answering while it was training (killed, crashed, paused or asleep past the "
    "heartbeat timeout, or the machine restarted); the metrics logged so far are kept."
)
ROLLED_BACK_MESSAGE = (
    "The store had lost this run's progress (its database was rolled back or replaced, e.g. its -wal file "
    "was deleted) while its folder holds its metrics; `python -m mtlcore repair` restores them."
)


class RunStore:
    """Runs, metrics and workers under the data folder ``home`` (default: ``default_home()``).

    Opening a store creates the folder and database if needed (an unwritable
    folder raises StoreError) and marks runs whose worker has vanished as
    ``interrupted``.
    """

    def __init__(self, home: Path | str | None = None):
        self.home = resolve_home(home)
        self.read_only = False
        try:
            self.db_path = database.create_database(self.home)
        except StoreUnwritable:
            # A read-only data folder can still be listed; every write then says it is read-only.
            self.db_path = self.home / database.DB_NAME
            if not self.db_path.is_file():
                raise
            database.open_read_only(self.db_path)
            self.read_only = True
            return
        self.recover_orphans()

    def __repr__(self) -> str:
        return f"RunStore({str(self.home)!r})"

    @contextmanager
    def kept_open(self) -> Iterator[None]:
        """Hold one idle connection to the database open meanwhile (a worker, for its whole life).

        Closing the last open connection makes SQLite checkpoint its WAL
        file into the database, and every call here opens and closes its own
        connection: without this, each small write of a training run pays
        for a checkpoint (about 1 ms instead of 0.2 ms). An idle connection
        holds no lock, so readers and writers elsewhere are not slowed.
        """
        conn = database.connect(self.db_path)
        try:
            yield
        finally:
            conn.close()

    # ----- paths --------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The folder of one run's files (``home/runs/<id>``)."""
        return self.home / "runs" / run_id

    def checkpoint_path(self, run_id: str) -> Path:
        """Where the run's latest checkpoint is (or will be) written."""
        return self.run_dir(run_id) / "checkpoint.pt"

    def logs_dir(self) -> Path:
        return self.home / "logs"

    # ----- reading runs -----------------------------------------------------------
    def list_runs(self, owner: Owner | str | None = None, label: str | None = None,
                  states: Iterable[str] | None = None, study_id: str | None = None) -> list[RunRecord]:
        """Runs matching every filter given, newest first.

        ``owner``: an Owner gives the runs it owns (its key's; see mtlcore.owners);
        a plain name gives every run shown under that name (compared folded:
        "Alice" finds "alice"), whoever's key made it.
        """
        where, params = [], []
        for column, value in (("label", label), ("study_id", study_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if isinstance(owner, Owner) and owner.key_hash is not None:
            where.append("owner_key = ?")
            params.append(owner.key_hash)
        if states is not None:
            states = [states] if isinstance(states, str) else list(states)
            if not states:
                return []
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        with reading(self.db_path) as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC, rowid DESC", params).fetchall()
        if isinstance(owner, Owner):
            rows = [row for row in rows if owner.owns(row["owner"], row["owner_key"])]
        elif owner is not None:
            rows = [row for row in rows if fold_name(row["owner"]) == fold_name(owner)]
        return [_record(row) for row in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """One run; an unknown id raises StoreError."""
        with reading(self.db_path) as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"No run with id {run_id!r}; `python -m mtlcore runs` lists them.")
        return _record(row)

    def step_metrics(self, run_id: str, after_step: int = 0) -> list[dict[str, Any]]:
        """Logged training steps after ``after_step``, in order: fit's step logs plus ``"t"`` (time)."""
        with reading(self.db_path) as conn:
            rows = conn.execute(
                "SELECT data FROM step_metrics WHERE run_id = ? AND step > ? ORDER BY step", (run_id, after_step)
            ).fetchall()
        return [json.loads(row["data"]) for row in rows]

    def epoch_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """Every finished epoch, in order: fit's epoch logs (train and val metrics) plus ``"t"``."""
        with reading(self.db_path) as conn:
            rows = conn.execute(
                "SELECT data FROM epoch_metrics WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [json.loads(row["data"]) for row in rows]

    # ----- queueing and claiming (runner and workers) ----------------------------
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
        owner = as_owner(owner)
        while True:
            now = time.time()
            run_ids = [new_run_id(now) for _ in rows]
            try:
                with writing(self.db_path) as conn:
                    if cap is not None:
                        _check_cap(conn, owner, cap)
                    conn.executemany(
                        "INSERT INTO runs (id, label, owner, owner_key, state, config, created_at, study_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(run_id, label, owner.name, owner.key_hash, QUEUED, config_json, now, study_id)
                         for run_id, (config_json, label) in zip(run_ids, rows)],
                    )
                return [self.get_run(run_id) for run_id in run_ids]
            except sqlite3.IntegrityError:
                continue  # two runs drew the same id in the same millisecond: draw again

    def active_count(self, owner: Owner | str) -> int:
        """How many runs ``owner`` has queued or running (what the queue cap counts: per key, see _active_count)."""
        with reading(self.db_path) as conn:
            return _active_count(conn, as_owner(owner))

    def queued_runs(self, limit: int = 200) -> list[RunRecord]:
        """The queued runs in the order workers claim them (fair: round-robin between people), at most ``limit``.

        See mtlcore.runs.queue_order for the rule. A packing worker looks
        for its lead run's partners in this order, so when more runs pack
        than one group holds, each person's first run is among them first.
        """
        with reading(self.db_path) as conn:
            order = _fair_order(conn)[:limit]
            rows = {row["id"]: row for row in _rows_by_id(conn, order)}
        return [_record(rows[run_id]) for run_id in order if run_id in rows]

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
            order = _fair_order(conn)
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
            for run_id in _fair_order(conn):
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
                conn.execute(
                    "UPDATE runs SET state = ?, started_at = ?, heartbeat = ?, worker = ?, message = '', claim = ? "
                    "WHERE id = ?",
                    (RUNNING, now, now, worker, new_claim(), run_id),
                )
                claimed.append(run_id)
        for run_id in claimed:
            self._keep_row_file(run_id)
        return [self.get_run(run_id) for run_id in claimed]

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

    def cancel_run(self, run_id: str, by: Owner | str | None = None) -> str:
        """Cancel a queued run at once, or ask a running one to stop; return what happened, as a sentence.

        ``by`` is who asks (None: the machine's user, who may stop anything);
        NotOwnerError when they may not (``Owner.may_change``). The check and
        the change are one transaction.
        """
        by = as_owner(by)
        with writing(self.db_path) as conn:
            row = conn.execute("SELECT state, owner, owner_key FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"No run with id {run_id!r}; `python -m mtlcore runs` lists them.")
            if not by.may_change(row["owner"], row["owner_key"]):
                raise NotOwnerError(by.refusal("this run", row["owner"], row["owner_key"], "stop"))
            if row["state"] == QUEUED:
                conn.execute(
                    "UPDATE runs SET state = ?, finished_at = ?, message = ? WHERE id = ?",
                    (CANCELLED, time.time(), "Cancelled before it started.", run_id),
                )
                return f"Run {run_id} was cancelled before it started{_acting(by)}."
            if row["state"] == RUNNING:
                # The worker's callback polls this flag and stops within a second or two.
                conn.execute("UPDATE runs SET cancel_requested = 1, message = 'Stopping...' WHERE id = ?", (run_id,))
                return f"Run {run_id} is stopping{_acting(by)}; the metrics logged so far are kept."
            return f"Run {run_id} has already ended ({row['state']}); nothing to stop."

    def delete_run(self, run_id: str, by: Owner | str | None = None) -> str:
        """Delete an ended run: its row, its metrics and its folder (checkpoint); return what happened, as a sentence.

        ``by`` is who asks (None: the machine's user). Only the run's owner,
        the teacher or the machine's user may (NotOwnerError otherwise); a
        queued or running run must be stopped first (StoreError). The folder
        is moved aside before the rows go, so a crash half-way never leaves
        run files that no row names (which would look like a damaged store).
        """
        by = as_owner(by)
        trash = self.home / "runs" / f".deleted-{run_id}"
        with writing(self.db_path) as conn:
            row = conn.execute("SELECT state, owner, owner_key FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"No run with id {run_id!r}; `python -m mtlcore runs` lists them.")
            if not by.may_change(row["owner"], row["owner_key"]):
                raise NotOwnerError(by.refusal("this run", row["owner"], row["owner_key"], "delete"))
            if row["state"] in ACTIVE_STATES:
                raise StoreError(f"Run {run_id} is {row['state']}; stop it first, then delete it.")
            folder = self.run_dir(run_id)
            if folder.exists():
                folder.rename(trash)
            try:
                conn.execute("DELETE FROM step_metrics WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM epoch_metrics WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            except BaseException:
                if trash.exists():
                    trash.rename(folder)
                raise
        shutil.rmtree(trash, ignore_errors=True)
        return f"Run {run_id} was deleted{_acting(by)}, with its metrics and checkpoint."

    def cancel_requested(self, run_id: str, claim: str | None = None) -> bool:
        """Whether someone asked the run to stop; with ``claim``, ClaimLost if the caller no longer holds it."""
        with reading(self.db_path) as conn:
            _hold(conn, run_id, claim)
            row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def check_claim(self, run_id: str, claim: str | None) -> None:
        """ClaimLost unless ``claim`` is still the run's (e.g. before a checkpoint replaces the last one)."""
        with reading(self.db_path) as conn:
            _hold(conn, run_id, claim)

    # ----- progress of a running run (worker) -------------------------------------
    # Each takes the ``claim`` the worker was given with the run (RunRecord.claim): a write
    # whose claim is no longer the run's raises ClaimLost and changes nothing. None: unfenced.
    def set_device(self, run_id: str, device: str, claim: str | None = None) -> None:
        with writing(self.db_path) as conn:
            _hold(conn, run_id, claim)
            conn.execute("UPDATE runs SET device = ? WHERE id = ?", (device, run_id))

    def append_steps(self, run_id: str, steps: list[dict[str, Any]], progress: float | None = None,
                     claim: str | None = None) -> None:
        """Store step logs (each with ``"step"``) and the run's progress, in one transaction."""
        with writing(self.db_path) as conn:
            _hold(conn, run_id, claim)
            conn.executemany(
                "INSERT OR REPLACE INTO step_metrics (run_id, step, data) VALUES (?, ?, ?)",
                [(run_id, int(s["step"]), _to_json(s)) for s in steps],
            )
            if progress is not None:
                conn.execute("UPDATE runs SET progress = ? WHERE id = ?", (float(progress), run_id))
        self._copy_metrics(run_id, "step", steps)

    def append_epoch(self, run_id: str, logs: dict[str, Any], claim: str | None = None) -> None:
        """Store one epoch's logs (with ``"epoch"``)."""
        with writing(self.db_path) as conn:
            _hold(conn, run_id, claim)
            conn.execute(
                "INSERT OR REPLACE INTO epoch_metrics (run_id, epoch, data) VALUES (?, ?, ?)",
                (run_id, int(logs["epoch"]), _to_json(logs)),
            )
        self._copy_metrics(run_id, "epoch", [logs])

    def finish_run(self, run_id: str, state: str, message: str = "", summary: dict[str, Any] | None = None,
                   claim: str | None = None) -> None:
        """Record how a run ended (one of the final states).

        With ``claim``, only while the caller still holds the run (ClaimLost
        otherwise): a worker that wakes after its run was marked interrupted
        cannot turn it into ``finished``. The claim stays with the run, so
        the same worker may still add the summary of a run it ended early.
        """
        if state not in FINAL_STATES:
            raise ValueError(f"A run ends as one of {', '.join(FINAL_STATES)}, not {state!r}.")
        progress_sql = ", progress = 1" if state == FINISHED else ""
        with writing(self.db_path) as conn:
            _hold(conn, run_id, claim)
            conn.execute(
                f"UPDATE runs SET state = ?, message = ?, summary = ?, finished_at = ?{progress_sql} WHERE id = ?",
                (state, message, None if summary is None else _to_json(summary), time.time(), run_id),
            )
            conn.execute("UPDATE workers SET run_id = NULL WHERE run_id = ?", (run_id,))
        self._keep_row_file(run_id)

    # ----- the run folder's copy of a run (see run_files.py) ------------------------
    def _copy_metrics(self, run_id: str, kind: str, items: list[dict[str, Any]]) -> None:
        """Append to the run folder's metrics.jsonl what was just committed; StoreUnwritable if it cannot."""
        folder = self.run_dir(run_id)
        try:
            run_files.append_metrics(folder, kind, items)
        except OSError as error:
            raise StoreUnwritable(
                f"Could not write {folder / run_files.METRICS_FILE} ({error.strerror or error}): the data folder "
                f"{self.home} may have turned read-only or full, so the run stopped."
            ) from None

    def _keep_row_file(self, run_id: str) -> None:
        """Copy the run's row into its folder (run.json, config.json, summary.json), if the folder can be written.

        Best effort: the row is already committed, and a folder that cannot
        be written is reported by the next metrics write.
        """
        try:
            with reading(self.db_path) as conn:
                row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                run_files.write_row(self.run_dir(run_id), dict(row))
        except (OSError, StoreError):
            pass

    # ----- workers -------------------------------------------------------------
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
                    _hold(conn, run_id, claim)
                except ClaimLost:
                    lost.append(run_id)
        return lost

    def live_workers(self) -> list[dict[str, Any]]:
        """Workers that are alive: recent heartbeat and, on this host, a live process."""
        with reading(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM workers ORDER BY started_at").fetchall()
        now = time.time()
        return [dict(row) for row in rows if _alive(row["host"], row["pid"], row["heartbeat"], now)]

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
            dead = [row["id"] for row in rows if not _alive(row["host"], row["pid"], row["heartbeat"], now)]
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
                if not _alive(host, int(pid or 0), last_sign, now):
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
                [(w["id"],) for w in workers if not _alive(w["host"], w["pid"], w["heartbeat"], now)],
            )
        for run_id in orphans:
            self._keep_row_file(run_id)
        return orphans


def _active_count(conn: sqlite3.Connection, owner: Owner) -> int:
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


def _fair_order(conn: sqlite3.Connection) -> list[str]:
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


def _rows_by_id(conn: sqlite3.Connection, run_ids: Sequence[str]) -> list[sqlite3.Row]:
    rows = []
    for start in range(0, len(run_ids), 500):  # SQLite's limit on parameters
        part = run_ids[start:start + 500]
        rows += conn.execute(f"SELECT * FROM runs WHERE id IN ({', '.join('?' * len(part))})", part).fetchall()
    return rows


def _acting(by: Owner) -> str:
    """" as the teacher" or " as the machine's user (command line)" for messages; "" for the owner."""
    return f" {by.acting_as}" if by.acting_as else ""


def _check_cap(conn: sqlite3.Connection, owner: Owner, cap: int) -> None:
    """Raise QueueFullError when ``owner`` already has ``cap`` runs queued or running."""
    active = _active_count(conn, owner)
    if active >= cap:
        raise QueueFullError(
            f"{owner.name} already has {active} runs waiting or training (the limit is {cap} per "
            "person); stop one or wait for one to finish."
        )


def _alive(host: str, pid: int, heartbeat: float, now: float) -> bool:
    """A worker is alive if it beat recently and, when it runs on this host, its process exists."""
    if now - (heartbeat or 0.0) > STALE_AFTER:
        return False
    return host != host_name() or pid_alive(pid)


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], label=row["label"], owner=row["owner"], state=row["state"], message=row["message"],
        config=_config(row["config"]), device=row["device"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        progress=row["progress"], summary=json.loads(row["summary"]) if row["summary"] else None,
        worker=row["worker"], study_id=row["study_id"], owner_key=row["owner_key"], claim=row["claim"],
    )


def new_claim() -> str:
    """A fresh claim token: the run is held by whoever was given it, until recovery takes it away."""
    return secrets.token_hex(8)


def _hold(conn: sqlite3.Connection, run_id: str, claim: str | None) -> None:
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


@functools.lru_cache(maxsize=4096)
def _config(config_json: str) -> ExperimentConfig:
    """A stored config, parsed once per process (pages list runs every second; a parse costs about 1 ms).

    Lenient: a run stored by another MTL Lab version (a setting since
    renamed or added) must still be listed, not break every page. Sharing
    one parsed object is safe because configs are frozen.
    """
    return ExperimentConfig.from_json(config_json, strict=False)


def _to_json(data: dict[str, Any]) -> str:
    # Logs are plain floats and dicts; anything else (a stray tensor or numpy number) becomes a float or text.
    return json.dumps(data, default=_plain)


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
