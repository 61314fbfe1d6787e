"""The SQLite file behind the run store: where it lives, its tables, its connections.

Why SQLite: it needs no server, several processes (the web app, its
workers, a terminal) can read and write one file safely, and in WAL mode
readers never wait for the writer, so a page can poll while a worker writes.

SQLite connections must not cross processes or be shared carelessly between
threads, so every call opens its own short-lived connection (cheap: well
under a millisecond) and closes it when done.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StoreError

DB_NAME = "mtl.sqlite"
BUSY_TIMEOUT_MS = 15_000  # how long a writer waits for another writer before giving up

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT 'anonymous',
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,            -- ExperimentConfig as JSON
    device TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    progress REAL NOT NULL DEFAULT 0,
    summary TEXT,                    -- JSON, once the run has ended
    worker TEXT,                     -- "host:pid" of the worker training it
    study_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    heartbeat REAL,                  -- last sign of life of its worker
    owner_key TEXT                   -- SHA-256 of the owner's browser key (mtlcore.owners); NULL: none
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs(state, created_at);
CREATE INDEX IF NOT EXISTS runs_by_owner ON runs(owner, state);
CREATE INDEX IF NOT EXISTS runs_by_study ON runs(study_id);

CREATE TABLE IF NOT EXISTS step_metrics (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    data TEXT NOT NULL,              -- the step's logs as JSON, with "t"
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS epoch_metrics (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    data TEXT NOT NULL,              -- the epoch's logs as JSON, with "t"
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,             -- "host:pid"
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    device TEXT,                     -- the device it trains on, or NULL for "what the config says"
    started_at REAL NOT NULL,
    heartbeat REAL NOT NULL,
    run_id TEXT                      -- the run it is training now
);
"""

# Columns added after a store was first created: (table, column, declaration).
# ``create_database`` adds any that an older store lacks, so a data folder made
# by an earlier version keeps working. A new column is one row here (and, for a
# fresh store, one line in SCHEMA above).
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    # SHA-256 of the private key of the browser that queued the run (mtlcore.owners); NULL: no key.
    ("runs", "owner_key", "TEXT"),
    # The same for a study: the runs it queues on its owner's behalf carry this key.
    ("studies", "owner_key", "TEXT"),
]


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for every row of ADDED_COLUMNS the file lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        # A table not made yet (studies, made by StudyStore) gets the column when it is made.
        if present and column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def unwritable(home: Path) -> StoreError:
    return StoreError(f"The data folder {home} is not writable; set MTL_HOME to a folder you can write to.")


def create_database(home: Path) -> Path:
    """Make ``home`` and its database (tables, WAL mode) if missing; return the database path.

    Any failure to create or write there becomes one StoreError sentence.
    """
    path = home / DB_NAME
    try:
        home.mkdir(parents=True, exist_ok=True)
        for sub in ("runs", "logs"):
            (home / sub).mkdir(exist_ok=True)
        if not os.access(home, os.W_OK):
            raise unwritable(home)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            # WAL is a property of the file: set once, every later connection uses it.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            add_missing_columns(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError):  # could not open or write the file
            raise unwritable(home) from None
        raise StoreError(
            f"The file {path} is not a readable MTL Lab database (it may be damaged); "
            "move it away or set MTL_HOME to another folder."
        ) from None
    except OSError:
        raise unwritable(home) from None
    return path


def connect(path: Path) -> sqlite3.Connection:
    """A new connection: rows as ``sqlite3.Row``, waiting politely on a busy database."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # NORMAL is safe with WAL (a power cut may lose the last commit, never corrupt the file)
    # and much faster than FULL for the many small metric writes.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for reads; closed afterwards."""
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def writing(path: Path) -> Iterator[sqlite3.Connection]:
    """A write transaction that holds the write lock from its first statement.

    ``BEGIN IMMEDIATE`` takes the lock up front, so check-then-write steps
    (claim the oldest queued run, enforce a queue cap) are atomic across
    processes: two workers can never claim the same run.
    """
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
