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

from .errors import StoreDamaged, StoreError, StoreUnwritable

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
    # The token of the claim a worker holds on a running run (fencing: see errors.ClaimLost); NULL: none.
    ("runs", "claim", "TEXT"),
]


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for every row of ADDED_COLUMNS the file lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        # A table not made yet (studies, made by StudyStore) gets the column when it is made.
        if present and column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def unwritable(home: Path) -> StoreUnwritable:
    return StoreUnwritable(f"The data folder {home} is not writable; set MTL_HOME to a folder you can write to.")


# SQLite's primary result codes (``error.sqlite_errorcode & 0xff``) that mean the file, not the request, is wrong.
SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 8, 10, 11, 13, 14, 26


def store_error(error: sqlite3.Error, path: Path) -> StoreError | None:
    """One sentence for an error that comes from the database file itself; None for any other error.

    A damaged page, an emptied or lost ``-wal`` file, a read-only or full
    disk: the person reads what happened and what to do, never a raw
    ``sqlite3.DatabaseError`` traceback. Other errors (a busy database, a
    constraint the caller handles) are left to the caller.
    """
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(error)
    home = path.parent
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN) or "readonly" in text:
        return unwritable(home)
    if code == SQLITE_FULL:
        return StoreUnwritable(f"The disk holding {home} is full; free some space "
                               "(`python -m mtlcore prune` removes old runs) and try again.")
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return StoreDamaged(f"The store {path} is damaged ({text}); `python -m mtlcore check` says what "
                            "can be saved and `python -m mtlcore repair` rebuilds it from the run folders.")
    if code == SQLITE_IOERR:
        return StoreDamaged(f"The store {path} cannot be read ({text}): its -wal or -shm file was probably "
                            "deleted while it was open, or the disk failed; stop the app and its workers, "
                            "then run `python -m mtlcore repair`.")
    return None


# Databases this process may only read (their folder is read-only): ``connect`` opens them read-only.
READ_ONLY: set[Path] = set()


def open_read_only(path: Path) -> None:
    """Read the database at ``path`` without writing (a read-only data folder); StoreError if even that fails.

    ``mode=ro`` still needs to write the ``-shm`` file of a WAL database,
    which a read-only folder forbids; ``immutable=1`` then reads the file
    as it is, taking no locks (nobody can be writing it anyway).
    """
    READ_ONLY.add(path)
    try:
        with reading(path) as conn:
            conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    except (StoreError, sqlite3.Error):
        READ_ONLY.discard(path)
        raise unwritable(path.parent) from None


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
        better = store_error(error, path)
        if isinstance(better, StoreDamaged) and (error.sqlite_errorcode or 0) & 0xFF == SQLITE_IOERR:
            raise better from None  # a lost -wal file: say so, not "not writable"
        if isinstance(error, sqlite3.OperationalError) and not isinstance(better, StoreDamaged):
            raise unwritable(home) from None  # could not open or write the file
        raise StoreDamaged(
            f"The file {path} is not a readable MTL Lab database (it may be damaged); "
            "`python -m mtlcore repair` moves it aside and rebuilds the runs from their folders."
        ) from None
    except OSError:
        raise unwritable(home) from None
    return path


def connect(path: Path) -> sqlite3.Connection:
    """A new connection: rows as ``sqlite3.Row``, waiting politely on a busy database."""
    if path in READ_ONLY:
        return _connect_read_only(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # NORMAL is safe with WAL (a power cut may lose the last commit, never corrupt the file)
    # and much faster than FULL for the many small metric writes.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{path.as_uri()}?{mode}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:
            conn.close()
    raise unwritable(path.parent)


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Turn errors of the database file itself into one StoreError sentence (see ``store_error``)."""
    try:
        yield
    except sqlite3.Error as error:
        better = store_error(error, path)
        if better is None:
            raise
        raise better from None


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for reads; closed afterwards."""
    with translated(path):
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
    with translated(path):
        conn = connect(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
