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
    repair(home)         (repair.py) moves a damaged database aside, saves what it
                         can read, and rebuilds the rest from the run folders:
                         ``python -m mtlcore repair``

Never silently forget a run whose files exist: a folder that cannot be
rebuilt (no config) is reported and left where it is.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import database, run_files
from .database import DB_NAME, reading
from .errors import StoreError
from .home import resolve_home
from .record import FINAL_STATES, INTERRUPTED, QUEUED, RUNNING



@dataclass(frozen=True)
class Finding:
    """One thing wrong, said in one sentence; ``run_ids`` are the runs it concerns (may be empty)."""

    kind: str  # unreadable-database | empty-database | unknown-folders | rows-behind-files | leftover-temp-files
    sentence: str
    run_ids: tuple[str, ...] = ()


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
    problem = database_problem(path, folders)
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


def database_problem(path: Path, folders: dict[str, Path]) -> Finding | None:
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


def _holds_files(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except OSError:
        return False


__all__ = ["Finding", "check", "database_problem", "quick_check", "remove_leftover_temp_files", "run_folders",
           "tidy_up"]
