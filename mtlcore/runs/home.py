"""Where background runs live on disk: the data folder ``MTL_HOME``.

    MTL_HOME/
      mtl.sqlite            runs, metrics, workers (see database.py)
      runs/<id>/            one folder per run: run.json, config.json, metrics.jsonl,
                            summary.json, checkpoint.pt (see run_files.py)
      logs/                 each worker's stdout and stderr

``data_folder_size(home)`` says how much disk it takes, by part. Where the
folder is comes from ``mtlcore.home`` (the one place that reads MTL_HOME);
its names are re-exported here, where the store's callers have always found them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..home import HOME_VARIABLE, default_home, resolve_home  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class FolderSize:
    """Bytes on disk under a data folder, by part (what the app and ``doctor`` show, and ``prune`` frees)."""

    database: int  # mtl.sqlite with its -wal and -shm files
    runs: int  # runs/<id>/: checkpoints, metrics copies, configs
    logs: int  # workers' logs
    other: int  # anything else (imported datasets, caches)

    @property
    def total(self) -> int:
        return self.database + self.runs + self.logs + self.other

    def as_text(self) -> str:
        """e.g. "48.2 MB (database 3.1 MB, runs 44.9 MB, logs 0.2 MB, other 0 B)"."""
        parts = ", ".join(f"{name} {format_bytes(getattr(self, name))}" for name in ("database", "runs", "logs", "other"))
        return f"{format_bytes(self.total)} ({parts})"


def data_folder_size(home: Path | str | None = None) -> FolderSize:
    """How much disk the data folder ``home`` (None: the default) takes, by part; 0 for a folder that does not exist.

    Walks the folder without following links; files that vanish meanwhile are skipped.
    """
    home = resolve_home(home)
    sizes = {"database": 0, "runs": 0, "logs": 0, "other": 0}
    try:
        entries = list(os.scandir(home))
    except OSError:
        return FolderSize(**sizes)
    for entry in entries:
        if entry.name.startswith("mtl.sqlite") and not entry.name.startswith("mtl.sqlite.damaged"):
            part = "database"
        else:
            part = entry.name if entry.name in ("runs", "logs") else "other"
        sizes[part] += _bytes_under(entry)
    return FolderSize(**sizes)


def format_bytes(count: int) -> str:
    """A byte count for people: 0 B, 512 B, 1.5 kB, 48.2 MB, 1.1 GB (powers of 1000, as disks are sold)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


def _bytes_under(entry: os.DirEntry) -> int:
    try:
        if entry.is_file(follow_symlinks=False):
            return entry.stat(follow_symlinks=False).st_size
        if entry.is_dir(follow_symlinks=False):
            return sum(_bytes_under(child) for child in os.scandir(entry.path))
    except OSError:
        pass
    return 0
