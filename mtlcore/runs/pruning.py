"""Keep the data folder bounded: delete old ended runs, thin the per-step rows of ended runs.

Without this the store keeps every logged step forever (about 370 bytes
each) and every run's checkpoint. ``python -m mtlcore prune`` calls
``prune``:

    >>> report = prune(store, older_than_days=30, keep_steps=500, dry_run=True)
    >>> print("\\n".join(report.lines))

Only ended runs are touched, never a queued or running one, and never a run
that a study's results point at (delete the study's runs with the study).
Thinning keeps ``keep_steps`` evenly spaced steps, the first and the last
among them: a curve of 500 points looks the same as one of 50,000, and
epoch metrics, summaries and checkpoints are kept whole.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from . import database, run_files
from .database import reading, writing
from .errors import StoreError
from .home import data_folder_size, format_bytes
from .record import FINAL_STATES

DEFAULT_KEEP_STEPS = 500
ROW_OVERHEAD = 24  # bytes a step row costs beyond its JSON (key, page bookkeeping); for dry-run estimates


@dataclass
class PruneReport:
    """What ``prune`` removed (or, with ``dry_run``, would remove), and the bytes freed."""

    dry_run: bool
    deleted: list[str] = field(default_factory=list)  # run ids
    thinned: dict[str, int] = field(default_factory=dict)  # run id -> step rows removed
    kept_for_studies: list[str] = field(default_factory=list)  # old enough, but a study uses them
    bytes_freed: int = 0  # measured on disk; estimated for a dry run
    lines: list[str] = field(default_factory=list)


def prune(store, older_than_days: float | None = None, keep_steps: int | None = None,
          dry_run: bool = False, now: float | None = None) -> PruneReport:
    """Delete ended runs older than ``older_than_days`` and thin ended runs to ``keep_steps`` steps each.

    Age counts from when a run ended. Either may be None (not done).
    """
    if older_than_days is not None and not older_than_days >= 0:
        raise StoreError(f"--older-than must be a number of days, 0 or more, not {older_than_days}.")
    if keep_steps is not None and keep_steps < 2:
        raise StoreError(f"--keep-steps must be at least 2 (the first and the last step), not {keep_steps}.")
    now = time.time() if now is None else now
    report = PruneReport(dry_run)
    before = data_folder_size(store.home).total
    ended = _ended_runs(store)
    used = _used_by_studies(store)
    estimate = 0
    if older_than_days is not None:
        cutoff = now - older_than_days * 86400
        for run_id, label, ended_at in ended:
            if ended_at >= cutoff:
                continue
            if run_id in used:
                report.kept_for_studies.append(run_id)
                continue
            estimate += _run_bytes(store, run_id)
            if not dry_run:
                store.delete_run(run_id)
            report.deleted.append(run_id)
            report.lines.append(f"{'Would delete' if dry_run else 'Deleted'} run {run_id} ({label or 'no label'}), "
                                f"ended {time.strftime('%Y-%m-%d', time.localtime(ended_at))}.")
    if keep_steps is not None:
        gone = set(report.deleted)
        for run_id, label, _ in ended:
            if run_id in gone:
                continue
            removed, saved = _thin(store, run_id, keep_steps, dry_run)
            if removed:
                report.thinned[run_id] = removed
                estimate += saved
                report.lines.append(f"{'Would thin' if dry_run else 'Thinned'} run {run_id} "
                                    f"({label or 'no label'}): {removed} step rows, {keep_steps} kept.")
    if report.kept_for_studies:
        report.lines.append(f"Kept {len(report.kept_for_studies)} old run(s) that studies use.")
    if dry_run:
        report.bytes_freed = estimate
    else:
        if report.deleted or report.thinned:
            report.lines += _shrink_database(store)
        report.bytes_freed = max(0, before - data_folder_size(store.home).total)
    verb = "would free about" if dry_run else "freed"
    report.lines.append(f"{len(report.deleted)} run(s) {'to delete' if dry_run else 'deleted'}, "
                        f"{len(report.thinned)} thinned; {verb} {format_bytes(report.bytes_freed)}.")
    return report


def _ended_runs(store) -> list[tuple[str, str, float]]:
    """(id, label, when it ended) of every ended run, oldest first."""
    with reading(store.db_path) as conn:
        rows = conn.execute(
            f"SELECT id, label, COALESCE(finished_at, created_at) AS ended FROM runs "
            f"WHERE state IN ({', '.join('?' * len(FINAL_STATES))}) ORDER BY ended", FINAL_STATES).fetchall()
    return [(r["id"], r["label"], r["ended"]) for r in rows]


def _used_by_studies(store) -> set[str]:
    """Runs a study's results point at (a study may reuse an identical run of someone else's)."""
    with reading(store.db_path) as conn:
        try:
            return {r[0] for r in conn.execute("SELECT run_id FROM study_members WHERE run_id IS NOT NULL")}
        except sqlite3.OperationalError:  # no study was ever made here
            return set()


def _run_bytes(store, run_id: str) -> int:
    """About how many bytes deleting a run frees: its folder, its rows."""
    with reading(store.db_path) as conn:
        rows = conn.execute(
            "SELECT (SELECT COALESCE(SUM(LENGTH(data)), 0) + COUNT(*) * ? FROM step_metrics WHERE run_id = ?) + "
            "(SELECT COALESCE(SUM(LENGTH(data)), 0) FROM epoch_metrics WHERE run_id = ?) + "
            "(SELECT LENGTH(config) + COALESCE(LENGTH(summary), 0) FROM runs WHERE id = ?)",
            (ROW_OVERHEAD, run_id, run_id, run_id)).fetchone()[0] or 0
    folder = store.run_dir(run_id)
    files = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    return int(rows) + files


def thinned_steps(steps: list[int], keep: int) -> set[int]:
    """``keep`` evenly spaced steps of ``steps`` (sorted), the first and the last among them."""
    if len(steps) <= keep:
        return set(steps)
    last = len(steps) - 1
    return {steps[round(i * last / (keep - 1))] for i in range(keep)}


def _thin(store, run_id: str, keep: int, dry_run: bool) -> tuple[int, int]:
    """Thin one run's step rows to ``keep``; return (rows removed, bytes they held)."""
    with reading(store.db_path) as conn:
        rows = conn.execute("SELECT step, LENGTH(data) FROM step_metrics WHERE run_id = ? ORDER BY step",
                            (run_id,)).fetchall()
    if len(rows) <= keep:
        return 0, 0
    kept = thinned_steps([r[0] for r in rows], keep)
    removed = [(r[0], r[1]) for r in rows if r[0] not in kept]
    if not dry_run:
        with writing(store.db_path) as conn:
            conn.executemany("DELETE FROM step_metrics WHERE run_id = ? AND step = ?",
                             [(run_id, step) for step, _ in removed])
        try:
            run_files.rewrite_steps(store.run_dir(run_id), kept)  # the folder's copy, thinned alike
        except OSError:
            pass
    return len(removed), sum(size + ROW_OVERHEAD for _, size in removed)


def _shrink_database(store) -> list[str]:
    """Give the freed pages back to the disk (VACUUM), then empty the -wal file; say so if it was busy."""
    conn = database.connect(store.db_path)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return []
    except sqlite3.OperationalError:
        return ["The database was busy, so its file shrinks later (its freed space is reused meanwhile)."]
    finally:
        conn.close()
