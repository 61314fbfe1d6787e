"""Repair: make a damaged store whole again from what can still be read, and from the run folders.

``python -m mtlcore repair``. The checks that find the damage are
integrity.py's; this module acts on them:

1. a database that cannot be read is moved aside (after the gentle fix: a
   lost ``-wal`` file leaves an ``-shm`` file that alone makes reads fail);
2. a fresh database gets every row the damaged one still yields (``_salvage``);
3. every run folder whose row is missing or behind its files is rebuilt from
   the files (run_files.py), and said in one sentence.

Never silently forget a run whose files exist: a folder that cannot be
rebuilt (no config) is reported and left where it is.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import run_files
from .database import DB_NAME, reading, writing
from .home import resolve_home
from .integrity import database_problem, remove_leftover_temp_files, run_folders
from .record import FINAL_STATES, FINISHED, INTERRUPTED, QUEUED, RUNNING

REBUILT_MESSAGE = ("Restored by `python -m mtlcore repair` from its folder after the store had lost it; "
                   "it stopped at step {step}, and the metrics in its folder are kept.")
# Tables a damaged database is never copied from: who is alive now is not worth saving.
NOT_SALVAGED = ("workers",)


@dataclass
class RepairReport:
    """What ``repair`` did, each line a sentence."""

    lines: list[str] = field(default_factory=list)
    restored: int = 0  # runs whose row was rebuilt from their folder
    completed: int = 0  # runs whose row was behind its files and caught up
    left: int = 0  # folders that could not be rebuilt (kept as they are)


def repair(home: Path | str | None = None) -> RepairReport:
    """Make the store at ``home`` whole again from what can still be read; say what was done.

    1. A database that cannot be read is moved aside (``mtl.sqlite.damaged-<time>``, with
       its -wal and -shm), after trying the gentle fix first: a lost -wal file leaves an
       -shm file that makes every read fail, and moving only those two aside can be enough.
    2. A fresh database gets every row the damaged one still yields, table by table.
    3. Every run folder whose row is missing or behind its files is rebuilt from the files.
    """
    from .store import RunStore  # the store builds on this module's checks

    home = resolve_home(home)
    path = home / DB_NAME
    report = RepairReport()
    problem = database_problem(path, run_folders(home))
    aside = None
    if problem is not None and problem.kind == "unreadable-database":
        aside = _set_aside_damaged(path, report)
    elif problem is not None and path.exists() and path.stat().st_size == 0:
        path.unlink()
        report.lines.append(f"Removed the empty (0-byte) store file {path}; a new one is made.")
    store = RunStore(home)  # a fresh database where needed; marks runs of vanished workers interrupted
    if aside is not None:
        _salvage(aside, store, report)
        store.recover_orphans()  # salvaged rows of runs whose worker is gone
    for run_id, folder in sorted(run_folders(home).items()):
        _rebuild_run(store, run_id, folder, report)
    removed = remove_leftover_temp_files(store)
    if removed:
        report.lines.append(f"Removed {len(removed)} half-written *.tmp file(s) left by a kill mid-write.")
    report.lines.append(
        f"Repair done: {report.restored} run(s) restored from their folders, {report.completed} caught up "
        f"with their files, {report.left} folder(s) left as they are." if report.restored or report.completed
        or report.left else "Nothing to rebuild: every run folder matches the store.")
    return report


def _set_aside_damaged(path: Path, report: RepairReport) -> Path | None:
    """Move a database that cannot be read aside: first only its -wal and -shm, then the file itself.

    Returns where the database file went (to salvage rows from), None if it could stay.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = []
    for suffix in ("-shm", "-wal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(path.with_name(f"{path.name}.damaged-{stamp}{suffix}"))
            moved.append(side.name)
    if moved and database_problem(path, {}) is None:
        report.lines.append(f"The store could not be read because of its {' and '.join(moved)} file(s) (probably a "
                            f"deleted -wal file); moved them aside as {path.name}.damaged-{stamp}-*, and the "
                            "database opens again.")
        return None
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(aside)
    report.lines.append(f"The store {path} is damaged; moved it aside as {aside.name} and made a new one.")
    return aside


def _salvage(source: Path, store, report: RepairReport) -> None:
    """Copy every row the damaged database at ``source`` still yields into the fresh one, table by table."""
    try:
        old = sqlite3.connect(f"{source.as_uri()}?immutable=1", uri=True)
        tables = old.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as error:
        report.lines.append(f"Nothing could be read from {source.name} ({error}); rebuilding from the run folders.")
        return
    try:
        for name, sql in tables:
            if name in NOT_SALVAGED or name.startswith("sqlite_"):
                continue
            try:
                cursor = old.execute(f'SELECT * FROM "{name}"')
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
            except sqlite3.Error as error:
                report.lines.append(f"Table {name} of {source.name} could not be read ({error}); "
                                    "its runs are rebuilt from their folders where they have one.")
                continue
            with writing(store.db_path) as conn:
                present = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
                if not present and sql:
                    conn.execute(sql)  # e.g. the studies' tables, made by StudyStore
                    present = columns
                keep = [c for c in columns if c in present]
                if not keep:
                    continue
                picks = [columns.index(c) for c in keep]
                conn.executemany(
                    f'INSERT OR IGNORE INTO "{name}" ({", ".join(keep)}) VALUES ({", ".join("?" * len(keep))})',
                    [tuple(row[i] for i in picks) for row in rows])
            report.lines.append(f"Saved {len(rows)} row(s) of table {name} from {source.name}.")
    finally:
        old.close()


def _rebuild_run(store, run_id: str, folder: Path, report: RepairReport) -> None:
    """Insert or catch up the row of one run from its folder; say what was done (nothing when it matches)."""
    files = run_files.read_folder(folder)
    with reading(store.db_path) as conn:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        stored_steps = {r[0] for r in conn.execute("SELECT step FROM step_metrics WHERE run_id = ?", (run_id,))}
        stored_epochs = {r[0] for r in conn.execute("SELECT epoch FROM epoch_metrics WHERE run_id = ?", (run_id,))}
    if row is not None and row["state"] == RUNNING:
        return  # a live worker holds it (recovery ran when the store opened); it writes its own rows
    new_steps = [s for step, s in sorted(files.steps.items()) if step not in stored_steps]
    new_epochs = [e for epoch, e in sorted(files.epochs.items()) if epoch not in stored_epochs]
    file_state = (files.row or {}).get("state")
    state, message = _ending_from_files(files)
    if row is None:
        if files.config_json is None:
            report.left += 1
            report.lines.append(f"Run folder {run_id} has no config.json, so its run cannot be rebuilt; "
                                "it is left as it is.")
            return
        _insert_row(store, run_id, files, state, message)
        report.restored += 1
        report.lines.append(f"Restored run {run_id} ({(files.row or {}).get('label') or 'no label'}) as {state}: "
                            f"{len(files.steps)} steps, {len(files.epochs)} epochs"
                            f"{', a checkpoint' if files.has_checkpoint else ''}.")
    else:
        rolled_back = (row["state"] == QUEUED and row["started_at"] is None and files.has_progress) or (
            row["state"] == INTERRUPTED and (row["message"] or "").startswith("The store had lost"))
        ended_in_files = file_state in FINAL_STATES and row["state"] not in FINAL_STATES
        if not (rolled_back or ended_in_files or new_steps or new_epochs):
            return
        with writing(store.db_path) as conn:
            if rolled_back or ended_in_files:
                conn.execute(
                    "UPDATE runs SET state = ?, message = ?, started_at = COALESCE(started_at, ?), "
                    "finished_at = COALESCE(?, finished_at, ?), summary = COALESCE(?, summary), claim = NULL "
                    "WHERE id = ?",
                    (state, message, (files.row or {}).get("started_at") or time.time(),
                     (files.row or {}).get("finished_at"), time.time(),
                     json.dumps(files.summary) if files.summary is not None else None, run_id))
            conn.execute("UPDATE runs SET progress = MAX(progress, ?) WHERE id = ?",
                         (1.0 if state == FINISHED and (rolled_back or ended_in_files) else _file_progress(files),
                          run_id))
        report.completed += 1
        report.lines.append(f"Caught up run {run_id} with its folder: {len(new_steps)} step(s) and "
                            f"{len(new_epochs)} epoch(s) restored, now {state if rolled_back or ended_in_files else row['state']}.")
    _insert_metrics(store, run_id, new_steps, new_epochs, files)
    store._keep_row_file(run_id)


def _ending_from_files(files: run_files.RunFolder) -> tuple[str, str]:
    """The state and message a rebuilt run gets: its ending as its folder recorded it, else interrupted."""
    row = files.row or {}
    if row.get("state") in FINAL_STATES:
        return row["state"], row.get("message") or ""
    return INTERRUPTED, REBUILT_MESSAGE.format(step=files.last_step)


def _file_progress(files: run_files.RunFolder) -> float:
    """How far the run got by its folder: its last logged step's progress (0..1)."""
    try:
        return float(files.steps.get(files.last_step, {}).get("progress") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _insert_row(store, run_id: str, files: run_files.RunFolder, state: str, message: str) -> None:
    row = dict(files.row or {})
    row.update(
        id=run_id, state=state, message=message, config=files.config_json, claim=None,
        summary=json.dumps(files.summary) if files.summary is not None else None,
        created_at=row.get("created_at") or folder_time(files.path),
        started_at=row.get("started_at") or folder_time(files.path),
        finished_at=row.get("finished_at") or time.time(),
        progress=1.0 if state == FINISHED else max(_file_progress(files), float(row.get("progress") or 0.0)),
        cancel_requested=0,
    )
    row.setdefault("label", "")
    row.setdefault("owner", "anonymous")
    with writing(store.db_path) as conn:
        present = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        keep = [c for c in present if c in row]
        conn.execute(f"INSERT OR REPLACE INTO runs ({', '.join(keep)}) VALUES ({', '.join('?' * len(keep))})",
                     [row[c] for c in keep])


def _insert_metrics(store, run_id: str, steps: list[dict], epochs: list[dict], files: run_files.RunFolder) -> None:
    if not steps and not epochs:
        return
    with writing(store.db_path) as conn:
        conn.executemany("INSERT OR IGNORE INTO step_metrics (run_id, step, data) VALUES (?, ?, ?)",
                         [(run_id, int(s["step"]), json.dumps(s)) for s in steps])
        conn.executemany("INSERT OR IGNORE INTO epoch_metrics (run_id, epoch, data) VALUES (?, ?, ?)",
                         [(run_id, int(e["epoch"]), json.dumps(e)) for e in epochs])


def folder_time(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except OSError:
        return time.time()
