"""Reproductions: a paper's claim, run live on embedded data, beside the paper's number.

    >>> from mtlcore.reproduce import REPRODUCTIONS, run_reproduction
    >>> REPRODUCTIONS.names()
    ['toy', ...]

Each reproduction is one module here (``toy.py``, ...) that registers a
``Reproduction`` by name; ``python -m mtlcore reproduce NAME`` runs it,
prints its table (claim, paper, ours, verdict) and writes ``result.json``
under ``MTL_HOME/reproductions/NAME/`` (or ``--out``). To add one: write
the module, and import it below.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .base import (
    INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, REPRODUCTIONS, VERDICTS, ClaimRow, Reproduction, ReproductionResult,
)

# Importing a module registers its reproduction (in the order --list shows them).
from . import toy  # noqa: F401
from . import mmoe_relatedness  # noqa: F401
from . import sweep_baseline  # noqa: F401
from . import affinity  # noqa: F401

__all__ = [
    "INCONCLUSIVE", "NOT_REPRODUCED", "REPRODUCED", "REPRODUCTIONS", "VERDICTS", "ClaimRow", "Reproduction",
    "ReproductionResult", "default_result_path", "measured_results", "run_reproduction", "stored_results",
]

#: Results as measured for the README's Findings, shipped with the lab (``measured/NAME.json``): what the
#: Findings page shows for a reproduction not yet run in this data folder.
MEASURED = Path(__file__).with_name("measured")


def default_result_path(name: str, home: Path | str | None = None) -> Path:
    """Where a reproduction's result is kept: ``MTL_HOME/reproductions/NAME/result.json``."""
    from ..runs.home import resolve_home

    return resolve_home(home) / "reproductions" / name / "result.json"


def run_reproduction(name: str, seeds: int | None = None, out: Path | str | None = None,
                     progress: Callable[[str], None] = lambda line: None, **options: Any) -> ReproductionResult:
    """Run reproduction ``name`` (unknown names list the valid ones), write its result, return it."""
    reproduction = REPRODUCTIONS.get(name)()
    seeds = reproduction.default_seeds if seeds is None else int(seeds)
    if seeds < 1:
        raise ValueError(f"seeds must be 1 or more, got {seeds}.")
    result = reproduction.run(seeds, progress=progress, **options)
    result.write(out if out is not None else default_result_path(name))
    return result


def measured_results() -> dict[str, ReproductionResult]:
    """The results measured for the README (``measured/NAME.json``), by name."""
    found = {}
    for name in REPRODUCTIONS.names():
        path = MEASURED / f"{name}.json"
        if path.is_file():
            try:
                found[name] = ReproductionResult.read(path)
            except (ValueError, KeyError, TypeError):
                continue
    return found


def stored_results(home: Path | str | None = None) -> dict[str, ReproductionResult]:
    """Every reproduction's stored result in the data folder, by name (those never run are absent)."""
    found = {}
    for name in REPRODUCTIONS.names():
        path = default_result_path(name, home)
        if path.is_file():
            try:
                found[name] = ReproductionResult.read(path)
            except (ValueError, KeyError, TypeError):
                continue  # a result written by another version: run it again to refresh it
    return found
