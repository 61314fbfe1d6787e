"""The run store: every background run, its metrics and its worker, in one SQLite file.

The store is the single source of truth. Pages read it, workers write it,
and because it is a file it survives closed tabs and app restarts:

    >>> store = RunStore("/tmp/mtl-home")
    >>> [(r.id, r.state) for r in store.list_runs(owner="alice")]
    >>> store.step_metrics(run_id, after_step=120)   # only the new points

Every method opens its own connection (see database.py), so one store object
may be shared by threads, and any number of processes may open the same home.

RunStore is one object for its callers, written in parts with one job each:

    store.py      opening the store, its paths, reading runs, cancel and delete
    queueing.py   QueueMixin: queueing runs under a cap, the fair queue's order and places
    claims.py     ClaimsMixin: claiming runs for a worker, the claim token, fencing
    progress.py   ProgressMixin: a run's metrics, device and ending; its folder's copy
    liveness.py   WorkersMixin: the workers' rows, heartbeats, recovering orphaned runs
    rows.py       a row as a RunRecord; logs as JSON
    schema.py     the tables (every table of the file, studies' included)
"""
from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ..owners import Owner, as_owner, fold_name
from . import database
from .claims import HEARTBEAT_EVERY, ROLLED_BACK_MESSAGE, STALE_AFTER, ClaimsMixin, new_claim
from .database import reading, writing
from .errors import NotOwnerError, StoreError, StoreUnwritable
from .home import resolve_home
from .liveness import INTERRUPTED_MESSAGE, WorkersMixin
from .progress import ProgressMixin
from .queueing import QueueMixin
from .record import ACTIVE_STATES, CANCELLED, QUEUED, RUNNING, RunRecord
from .rows import record_from_row

__all__ = ["HEARTBEAT_EVERY", "INTERRUPTED_MESSAGE", "ROLLED_BACK_MESSAGE", "RunStore", "STALE_AFTER", "new_claim"]


class RunStore(QueueMixin, ClaimsMixin, ProgressMixin, WorkersMixin):
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
        return [record_from_row(row) for row in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """One run; an unknown id raises StoreError."""
        with reading(self.db_path) as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"No run with id {run_id!r}; `python -m mtlcore runs` lists them.")
        return record_from_row(row)

    # ----- stopping and deleting (anyone allowed to) ---------------------------------
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
                conn.execute("DELETE FROM steering WHERE run_id = ?", (run_id,))  # its live changes (steering.py)
                conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            except BaseException:
                if trash.exists():
                    trash.rename(folder)
                raise
        shutil.rmtree(trash, ignore_errors=True)
        return f"Run {run_id} was deleted{_acting(by)}, with its metrics and checkpoint."


def _acting(by: Owner) -> str:
    """" as the teacher" or " as the machine's user (command line)" for messages; "" for the owner."""
    return f" {by.acting_as}" if by.acting_as else ""
