"""Is the store whole? Compare the database with the run folders, and rebuild what it lost.

A store can lose runs without anyone noticing: a deleted ``-wal`` file rolls
a training run back to ``queued`` with 0 steps, a 0-byte database file opens
as a new empty store while the run folders sit next to it, a damaged page
makes every read fail. The run folders keep a second copy of every started
run (run_files.py), written after each change commits, so they are never
ahead of a whole database. Files ahead of rows therefore mean damage:

    quick_check(store)   cheap (one query, one folder listing): for the worker's
                         log and the ``runs`` command's warning
    check(home)          everything, without writing: ``python -m mtlcore check``
    repair(home)         moves a damaged database aside, saves what it can read,
                         and rebuilds the rest from the run folders:
                         ``python -m mtlcore repair``

Never silently forget a run whose files exist: a folder that cannot be
rebuilt (no config) is reported and left where it is.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import database, run_files
from .database import DB_NAME, reading, writing
from .errors import StoreError
from .home import resolve_home
from .record import FINAL_STATES, FINISHED, INTERRUPTED, QUEUED, RUNNING

REBUILT_MESSAGE = ("Restored by `python -m mtlcore repair` from its folder after the store had lost it; "
                   "it stopped at step {step}, and the metrics in its folder are kept.")
# Tables a damaged database is never copied from: who is alive now is not worth saving.
NOT_SALVAGED = ("workers",)


@dataclass(frozen=True)
class Finding:
    """One thing wrong, said in one sentence; ``run_ids`` are the runs it concerns (may be empty)."""

    kind: str  # unreadable-database | empty-database | unknown-folders | rows-behind-files | leftover-temp-files
    sentence: str
    run_ids: tuple[str, ...] = ()


@dataclass
class RepairReport:
    """What ``repair`` did, each line a sentence."""

    lines: list[str] = field(default_factory=list)
    restored: int = 0  # runs whose row was rebuilt from their folder
    completed: int = 0  # runs whose row was behind its files and caught up
    left: int = 0  # folders that could not be rebuilt (kept as they are)


# ----- cheap checks ---------------------------------------------------------------------

def run_folders(home: Path) -> dict[str, Path]:
    """Every run folder under ``home/runs`` that holds something (hidden ones, e.g. a delete in progress, skipped)."""
    root = home / "runs"
    try:
        entries = list(root.iterdir())
    except OSError:
        return {}
    return {p.name: p for p in entries if p.is_dir() and not p.name.startswith(".") and _holds_files(p)}


def quick_check(store) -> list[Finding]:
    """Damage visible from one query and one folder listing: unknown run folders, runs rolled back."""
    folders = run_folders(store.home)
    with reading(store.db_path) as conn:
        rows = {r["id"]: r for r in conn.execute("SELECT id, state, started_at, message FROM runs")}
    return _folder_findings(store.home, store.db_path, folders, rows, {})


def tidy_up(store) -> list[str]:
    """What a worker does on start: remove leftover ``*.tmp`` files, and name any damage; returns sentences."""
    said = []
    removed = remove_leftover_temp_files(store)
    if removed:
        said.append(f"Removed {len(removed)} half-written file(s) left by a kill mid-write: "
                    + ", ".join(str(p.relative_to(store.home)) for p in removed) + ".")
    try:
        said += [finding.sentence for finding in quick_check(store)]
    except StoreError as error:
        said.append(str(error))
    return said


def remove_leftover_temp_files(store) -> list[Path]:
    """Delete ``*.tmp`` files (a checkpoint or run file half-written when a process was killed) of runs not training now.

    A run that is training may be writing its own temp file this very
    moment, so only folders of runs that are not ``running`` are touched.
    """
    with reading(store.db_path) as conn:
        running = {r["id"] for r in conn.execute("SELECT id FROM runs WHERE state = ?", (RUNNING,))}
    removed = []
    for run_id, folder in run_folders(store.home).items():
        if run_id in running:
            continue
        for tmp in folder.glob("*" + run_files.TEMP_SUFFIX):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass  # read-only: reported elsewhere
    return removed


# ----- the full check -----------------------------------------------------------------

def check(home: Path | str | None = None) -> list[Finding]:
    """Everything wrong with the store at ``home``, without changing anything; [] when it is whole."""
    home = resolve_home(home)
    path = home / DB_NAME
    folders = run_folders(home)
    problem = _database_problem(path, folders)
    if problem is not None:
        return [problem]
    if not path.exists():
        return []  # a data folder nobody has used yet
    conn = _open_for_reading(path)
    try:
        rows = {r["id"]: r for r in conn.execute("SELECT id, state, started_at, message FROM runs")}
        last = {
            run_id: (step or 0, epoch or 0, count) for run_id, step, epoch, count in conn.execute(
                "SELECT r.id, (SELECT MAX(step) FROM step_metrics WHERE run_id = r.id), "
                "(SELECT MAX(epoch) FROM epoch_metrics WHERE run_id = r.id), "
                "(SELECT COUNT(*) FROM step_metrics WHERE run_id = r.id) FROM runs r")
        }
    except sqlite3.Error as error:
        return [Finding("unreadable-database", str(database.store_error(error, path) or error))]
    finally:
        conn.close()
    findings = _folder_findings(home, path, folders, rows, last)
    leftovers = [run_id for run_id, folder in folders.items()
                 if (rows.get(run_id) is None or rows[run_id]["state"] != RUNNING)
                 and any(folder.glob("*" + run_files.TEMP_SUFFIX))]
    if leftovers:
        findings.append(Finding(
            "leftover-temp-files",
            f"{len(leftovers)} run folder(s) hold a half-written *.tmp file left by a kill mid-write; the next "
            "worker (or `python -m mtlcore repair`) removes them.", tuple(leftovers)))
    return findings


def _folder_findings(home: Path, db_path: Path, folders: dict[str, Path], rows: dict, last: dict) -> list[Finding]:
    """Unknown folders and rows behind their files (``last``: run -> (max step, max epoch, steps) stored, if known)."""
    findings = []
    unknown = sorted(name for name in folders if name not in rows)
    if unknown:
        findings.append(Finding(
            "unknown-folders",
            f"{len(unknown)} run folder(s) under {home / 'runs'} are not in the store {db_path} "
            "(its database was emptied, replaced or rolled back, e.g. a 0-byte file or a deleted -wal file); "
            "`python -m mtlcore repair` restores them from their files.", tuple(unknown)))
    behind = []
    for run_id, row in rows.items():
        folder = folders.get(run_id)
        if folder is None:
            continue
        if row["state"] == QUEUED and row["started_at"] is None and run_files.has_logged_progress(folder):
            behind.append(run_id)  # rolled back to before it was claimed
        elif row["state"] == INTERRUPTED and row["message"] and row["message"].startswith("The store had lost"):
            behind.append(run_id)  # set aside by a worker for the same reason
        elif run_id in last:
            files = run_files.read_folder(folder)
            step, epoch, count = last[run_id]
            ended_in_files = (files.row or {}).get("state") in FINAL_STATES
            # A gap (rows lost in the middle, the run trained on) shows in the count, not the last step.
            if files.last_step > step or files.last_epoch > epoch or len(files.steps) > count or (
                    ended_in_files and row["state"] not in FINAL_STATES):
                behind.append(run_id)
    if behind:
        findings.append(Finding(
            "rows-behind-files",
            f"{len(behind)} run(s) in the store are behind their own folders (fewer steps or epochs, or not "
            "ended although their files say they did: the store was rolled back, e.g. its -wal file was "
            "deleted); `python -m mtlcore repair` restores them from their files.", tuple(sorted(behind))))
    return findings


def _database_problem(path: Path, folders: dict[str, Path]) -> Finding | None:
    """A finding when the database file is missing, empty or unreadable; None when it opens and checks out."""
    if not path.exists() or path.stat().st_size == 0:
        if not folders:
            return None if not path.exists() else Finding(
                "empty-database", f"The store file {path} is empty (0 bytes); it holds no runs, and no run "
                "folders sit next to it, so there is nothing to lose.")
        return Finding(
            "empty-database",
            f"The store file {path} is {'missing' if not path.exists() else 'empty (0 bytes)'} while "
            f"{len(folders)} run folder(s) sit next to it; `python -m mtlcore repair` rebuilds the store "
            "from them.", tuple(sorted(folders)))
    try:
        conn = _open_for_reading(path)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as error:
        better = database.store_error(error, path)
        return Finding("unreadable-database", str(better or f"The store {path} cannot be read ({error})."))
    if verdict != "ok":
        return Finding("unreadable-database",
                       f"The store {path} is damaged ({verdict}); `python -m mtlcore repair` moves it aside, "
                       "copies what it can still read and rebuilds the rest from the run folders.")
    return None


def _open_for_reading(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=database.BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    return conn


# ----- repair ---------------------------------------------------------------------------

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
    problem = _database_problem(path, run_folders(home))
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
    if moved and _database_problem(path, {}) is None:
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


def _holds_files(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except OSError:
        return False


__all__ = ["Finding", "RepairReport", "check", "quick_check", "remove_leftover_temp_files", "repair", "tidy_up"]
