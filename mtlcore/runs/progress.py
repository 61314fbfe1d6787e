"""A run's progress in the store: its step and epoch metrics, its device, how it ended, and its folder's copy.

``ProgressMixin`` is the part of RunStore (store.py) that a training run
writes through (via the streaming callback, callback.py) and that pages
read its curves from. Each write takes the ``claim`` the worker was given
with the run (RunRecord.claim): a write whose claim is no longer the run's
raises ClaimLost and changes nothing (claims.py). None: unfenced.

After each change commits, the run's folder gets a copy (run_files.py), so
``repair`` can rebuild what a damaged database lost.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from . import run_files
from .claims import hold
from .database import reading, writing
from .errors import StoreError, StoreUnwritable
from .record import FINAL_STATES, FINISHED
from .rows import to_json


class ProgressMixin:
    """RunStore's metrics and endings: what a worker writes while it trains, and what pages plot."""

    db_path: Path
    home: Path

    # ----- reading ------------------------------------------------------------------
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

    # ----- writing (the worker) -------------------------------------------------------
    def set_device(self, run_id: str, device: str, claim: str | None = None) -> None:
        with writing(self.db_path) as conn:
            hold(conn, run_id, claim)
            conn.execute("UPDATE runs SET device = ? WHERE id = ?", (device, run_id))

    def append_steps(self, run_id: str, steps: list[dict[str, Any]], progress: float | None = None,
                     claim: str | None = None) -> None:
        """Store step logs (each with ``"step"``) and the run's progress, in one transaction."""
        with writing(self.db_path) as conn:
            hold(conn, run_id, claim)
            conn.executemany(
                "INSERT OR REPLACE INTO step_metrics (run_id, step, data) VALUES (?, ?, ?)",
                [(run_id, int(s["step"]), to_json(s)) for s in steps],
            )
            if progress is not None:
                conn.execute("UPDATE runs SET progress = ? WHERE id = ?", (float(progress), run_id))
        self._copy_metrics(run_id, "step", steps)

    def append_epoch(self, run_id: str, logs: dict[str, Any], claim: str | None = None) -> None:
        """Store one epoch's logs (with ``"epoch"``)."""
        with writing(self.db_path) as conn:
            hold(conn, run_id, claim)
            conn.execute(
                "INSERT OR REPLACE INTO epoch_metrics (run_id, epoch, data) VALUES (?, ?, ?)",
                (run_id, int(logs["epoch"]), to_json(logs)),
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
            hold(conn, run_id, claim)
            conn.execute(
                f"UPDATE runs SET state = ?, message = ?, summary = ?, finished_at = ?{progress_sql} WHERE id = ?",
                (state, message, None if summary is None else to_json(summary), time.time(), run_id),
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
