"""A runs-table row as a RunRecord, and logs as JSON text: what every part of the run store shares."""
from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any, Sequence

from ..config import ExperimentConfig
from .record import RunRecord


def record_from_row(row: sqlite3.Row) -> RunRecord:
    """The RunRecord of one ``SELECT * FROM runs`` row."""
    return RunRecord(
        id=row["id"], label=row["label"], owner=row["owner"], state=row["state"], message=row["message"],
        config=stored_config(row["config"]), device=row["device"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        progress=row["progress"], summary=json.loads(row["summary"]) if row["summary"] else None,
        worker=row["worker"], study_id=row["study_id"], owner_key=row["owner_key"], claim=row["claim"],
        **_packing(row),
    )


def _packing(row: sqlite3.Row) -> dict:
    """The row's pack columns (an old store opened read-only may lack them: the run then trains alone)."""
    if "pack_key" not in row.keys():
        return {}
    return {"pack_key": row["pack_key"], "pack_batch": row["pack_batch"], "pack_on_cpu": bool(row["pack_on_cpu"])}


def rows_by_id(conn: sqlite3.Connection, run_ids: Sequence[str]) -> list[sqlite3.Row]:
    """The runs rows of ``run_ids`` (any order), a few queries for many ids."""
    rows = []
    for start in range(0, len(run_ids), 500):  # SQLite's limit on parameters
        part = run_ids[start:start + 500]
        rows += conn.execute(f"SELECT * FROM runs WHERE id IN ({', '.join('?' * len(part))})", part).fetchall()
    return rows


@functools.lru_cache(maxsize=4096)
def stored_config(config_json: str) -> ExperimentConfig:
    """A stored config, parsed once per process (pages list runs every second; a parse costs about 1 ms).

    Lenient: a run stored by another MTL Lab version (a setting since
    renamed or added) must still be listed, not break every page. Sharing
    one parsed object is safe because configs are frozen.
    """
    return ExperimentConfig.from_json(config_json, strict=False)


def to_json(data: dict[str, Any]) -> str:
    """Logs as JSON text; anything not plain (a stray tensor or numpy number) becomes a float or text."""
    return json.dumps(data, default=_plain)


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
