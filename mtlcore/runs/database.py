"""The SQLite file behind the run store: where it lives, its connections, its errors in one sentence.

Why SQLite: it needs no server, several processes (the web app, its
workers, a terminal) can read and write one file safely, and in WAL mode
readers never wait for the writer, so a page can poll while a worker writes.

SQLite connections must not cross processes or be shared carelessly between
threads, so every call opens its own short-lived connection (cheap: well
under a millisecond) and closes it when done. The tables themselves are
schema.py's.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StoreDamaged, StoreError, StoreUnwritable
# The tables live in schema.py (one owner for the file's shape); re-exported for older imports.
from .schema import ADDED_COLUMNS, INDEXES, TABLES, add_missing_columns, create_tables  # noqa: F401

DB_NAME = "mtl.sqlite"
BUSY_TIMEOUT_MS = 15_000  # how long a writer waits for another writer before giving up

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
            create_tables(conn)
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
