"""Every table of the SQLite file, in one place: the runs, their metrics, the workers, the studies.

One module owns the database's shape, so that the run store, the studies,
``check`` and ``repair`` agree on it, and a new column or table is added in
one place:

    a new column   one row in ADDED_COLUMNS (an older file gets it on open)
                   and, for a fresh file, one line in TABLES
    a new table    a ``CREATE TABLE IF NOT EXISTS`` in TABLES (an older file
                   gets it on open, since every statement here is idempotent)
    a new index    one line in INDEXES (made after the columns are added, so
                   an index may name a column an older file lacked)

``create_tables`` runs all three, in that order, every time a store opens
(``database.create_database``); it changes nothing in a file that is current.
"""
from __future__ import annotations

import sqlite3

TABLES = """
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
    owner_key TEXT,                  -- SHA-256 of the owner's browser key (mtlcore.owners); NULL: none
    claim TEXT                       -- the token of the worker's claim while running (errors.ClaimLost)
);

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

-- A study (mtlcore.studies.store): many runs that together answer one question.
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

-- One row per member run a study's plan needs.
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

-- Live steering (mtlcore.runs.steering): a change asked of a running run, and the step it took effect.
CREATE TABLE IF NOT EXISTS steering (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,            -- 1, 2, ... per run: the worker reads the rows after the last it took
    key TEXT NOT NULL,               -- loss.weights.<task>, optim.lr, pause, resume, forked_from, packed
    value REAL,
    text TEXT NOT NULL DEFAULT '',   -- forked_from: the parent's id
    by_name TEXT NOT NULL DEFAULT '',
    requested_at REAL NOT NULL,
    applied_step INTEGER,            -- steps trained before it acted; NULL until the worker took it
    applied_at REAL,
    note TEXT NOT NULL DEFAULT '',   -- why the worker refused it ('' when applied)
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
-- A lesson (mtlcore.runs.lesson_room) that was shared as a link or closed by the teacher.
CREATE TABLE IF NOT EXISTS lessons (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',  -- '' for a built-in lesson (lessons/*.toml) that was only closed
    goal TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '{}', -- the shared link's query parameters as JSON
    owner TEXT NOT NULL DEFAULT '',
    owner_key TEXT,
    created_at REAL NOT NULL,
    closed_at REAL,                  -- NULL: open to new runs
    closed_by TEXT
);

-- A student's answer to a lesson step's question (one per browser key and step; a new one replaces it).
CREATE TABLE IF NOT EXISTS lesson_answers (
    lesson TEXT NOT NULL,
    step INTEGER NOT NULL,
    owner TEXT NOT NULL,
    owner_key TEXT NOT NULL,         -- '' for a keyless owner (the command line, a script)
    answer TEXT NOT NULL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (lesson, step, owner_key, owner)
) WITHOUT ROWID;
"""

# Columns added after a store was first created: (table, column, declaration).
# ``add_missing_columns`` adds any that an older file lacks, so a data folder
# made by an earlier version keeps working. A new column is one row here (and,
# for a fresh store, one line in TABLES above).
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    # SHA-256 of the private key of the browser that queued the run (mtlcore.owners); NULL: no key.
    ("runs", "owner_key", "TEXT"),
    # The same for a study: the runs it queues on its owner's behalf carry this key.
    ("studies", "owner_key", "TEXT"),
    # The token of the claim a worker holds on a running run (fencing: see errors.ClaimLost); NULL: none.
    ("runs", "claim", "TEXT"),
    # How a run packs, decided when it is queued (mtlcore.packing.grouping.packing_of); NULL key: it trains alone.
    ("runs", "pack_key", "TEXT"),
    ("runs", "pack_batch", "INTEGER"),  # the most runs in its pack
    ("runs", "pack_on_cpu", "INTEGER NOT NULL DEFAULT 0"),  # 1: stacking its model pays on a CPU too
    # The lesson a run was started from (mtlcore.lessons: the class board); NULL: none.
    ("runs", "lesson", "TEXT"),
]

# Made after ADDED_COLUMNS, so an index may name an added column.
INDEXES = """
CREATE INDEX IF NOT EXISTS runs_by_state ON runs(state, created_at);
CREATE INDEX IF NOT EXISTS runs_by_owner ON runs(owner, state);
CREATE INDEX IF NOT EXISTS runs_by_study ON runs(study_id);
CREATE INDEX IF NOT EXISTS runs_by_pack_key ON runs(pack_key, state);
CREATE INDEX IF NOT EXISTS studies_by_owner ON studies(owner, created_at);
CREATE INDEX IF NOT EXISTS runs_by_lesson ON runs(lesson);
"""


def create_tables(conn: sqlite3.Connection) -> None:
    """Make whatever of the tables, added columns and indexes the file lacks (idempotent)."""
    conn.executescript(TABLES)
    add_missing_columns(conn)
    conn.executescript(INDEXES)


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for every row of ADDED_COLUMNS the file lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if present and column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
