"""A background run's folder: the files that let the run be rebuilt if its database is lost.

    runs/<id>/
      run.json        the run's row (label, owner, state, times, ...) as the store last wrote it
      config.json     its ExperimentConfig (as ``python -m mtlcore train --out`` writes it)
      metrics.jsonl   every logged step and epoch, one JSON object a line: {"kind": "step", ...}
      summary.json    what training returned, once the run has ended
      checkpoint.pt   the latest checkpoint

The database is the source of truth while it is whole; these files are its
second copy, written by the store right after each change commits, so they
are never ahead of a healthy database. When they are (the database was
emptied, replaced, rolled back by a lost ``-wal`` file, or a page is
damaged), ``mtlcore.runs.integrity`` notices and rebuilds the rows from them.
Same layout as a foreground run's ``--out`` folder, so tools read both alike.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
TEMP_SUFFIX = ".tmp"  # what an atomic write writes first (see mtlcore.checkpoint.write_checkpoint_bytes)

# Columns of a run's row that run.json leaves out: the config and summary have files of
# their own, and a claim token is only meaningful to the worker that holds it.
NOT_IN_RUN_FILE = ("config", "summary", "claim")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def write_row(folder: Path, row: dict[str, Any]) -> None:
    """Keep a run's row (as stored) in ``folder``: run.json, and config.json the first time."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RUN_FILE, {k: v for k, v in row.items() if k not in NOT_IN_RUN_FILE})
    config = folder / CONFIG_FILE
    if row.get("config") and not config.exists():
        config.write_text(row["config"] + "\n")
    if row.get("summary"):
        (folder / SUMMARY_FILE).write_text(row["summary"] + "\n")


def append_metrics(folder: Path, kind: str, items: Iterable[dict[str, Any]]) -> None:
    """Append logged steps or epochs (``kind``: "step" or "epoch") to metrics.jsonl."""
    lines = "".join(json.dumps({"kind": kind, **item}, default=_plain) + "\n" for item in items)
    if lines:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / METRICS_FILE, "a") as out:
            out.write(lines)


def rewrite_steps(folder: Path, keep: set[int]) -> None:
    """Keep only the steps in ``keep`` (and every epoch) in metrics.jsonl (``prune --thin-steps``)."""
    path = folder / METRICS_FILE
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if not _is_step(line) or _step_of(line) in keep]
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    tmp.write_text("".join(kept))
    os.replace(tmp, path)


@dataclass
class RunFolder:
    """What a run folder holds, read back leniently (a torn last line or a missing file is skipped)."""

    path: Path
    row: dict[str, Any] | None = None  # run.json
    config_json: str | None = None  # config.json, as text
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)  # step -> logs
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)  # epoch -> logs
    summary: dict[str, Any] | None = None
    has_checkpoint: bool = False

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def last_step(self) -> int:
        return max(self.steps, default=0)

    @property
    def last_epoch(self) -> int:
        return max(self.epochs, default=0)

    @property
    def has_progress(self) -> bool:
        """Whether the run had started training: logged metrics, a checkpoint or an ending."""
        return bool(self.steps or self.epochs or self.has_checkpoint or self.summary is not None)


def read_folder(folder: Path) -> RunFolder:
    """Everything a run folder holds that a row can be rebuilt from."""
    found = RunFolder(folder, has_checkpoint=(folder / CHECKPOINT_FILE).is_file())
    found.row = _read_json(folder / RUN_FILE)
    config = folder / CONFIG_FILE
    if config.is_file():
        try:
            found.config_json = config.read_text().strip() or None
        except (OSError, UnicodeDecodeError):
            pass
    summary = _read_json(folder / SUMMARY_FILE)
    found.summary = summary if isinstance(summary, dict) else None
    for entry in _read_lines(folder / METRICS_FILE):
        kind = entry.pop("kind", None)
        try:
            if kind == "step":
                found.steps[int(entry["step"])] = entry
            elif kind == "epoch":
                found.epochs[int(entry["epoch"])] = entry
        except (KeyError, TypeError, ValueError):
            continue
    return found


def has_logged_progress(folder: Path) -> bool:
    """Cheap check (two stats): has this run folder seen training (metrics or a checkpoint)?"""
    metrics = folder / METRICS_FILE
    return (metrics.is_file() and metrics.stat().st_size > 0) or (folder / CHECKPOINT_FILE).is_file()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _read_lines(path: Path) -> Iterable[dict[str, Any]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill mid-write
        if isinstance(entry, dict):
            yield entry


def _is_step(line: str) -> bool:
    return line.startswith('{"kind": "step"')


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
