"""The arithmetic of studies, on plain numbers: spreads, gains, matrices, fronts.

Sign convention: a *gain* is positive when the value got better, whatever
the metric's direction (``mtlcore.compare.improvement``: accuracy up, or MAE
down). Delta_m keeps the paper's sign (negative = multi-task better); see
``mtlcore.compare.delta_m``, which is the one definition the app uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..compare import improvement

__all__ = [
    "Spread", "affinity_matrix", "clearly_different", "dominates", "gain", "mean_std", "pareto_front",
    "transfer_matrix",
]


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of ``n`` values (std = 0 for one value)."""

    mean: float
    std: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "std": self.std, "n": self.n}


def mean_std(values: Iterable[float | None]) -> Spread | None:
    """Mean and spread of the finite values, or None when there are none.

    The standard deviation is the *sample* one (divided by n - 1): with three
    seeds the population formula would understate the spread by a fifth.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return Spread(mean, std, len(xs))


def clearly_different(a: Spread | None, b: Spread | None) -> bool | None:
    """Is the gap between two means larger than the seed-to-seed spread?

    The rule: ``|mean_a - mean_b| > std_a + std_b``. It is a rough screen,
    not a significance test: when it says no, the difference is within what
    changing the seed alone does, and should not be read as an effect. None
    when either side has fewer than two seeds (no spread to compare with).
    """
    if a is None or b is None or a.n < 2 or b.n < 2:
        return None
    return abs(a.mean - b.mean) > a.std + b.std


def gain(new: float | None, old: float | None, higher_is_better: bool) -> float | None:
    """How much better ``new`` is than ``old``, in percent of ``old`` (positive = better).

    None when a value is missing or ``old`` is 0 (no relative change exists).
    """
    if new is None or old is None or old == 0 or not (math.isfinite(new) and math.isfinite(old)):
        return None
    return improvement(new, old, higher_is_better)


def transfer_matrix(tasks: Sequence[str], alone: Mapping[str, float | None],
                    together: Mapping[frozenset, Mapping[str, float | None]],
                    higher_is_better: Mapping[str, bool]) -> list[list[float | None]]:
    """T x T gains: entry [i][j] is task j's gain when trained with task i over j alone.

    Standley et al., ICML 2020. ``alone[j]`` is j's single-task value,
    ``together[frozenset({i, j})][j]`` its value in the pair model. Rows are
    the partner, columns the task measured; the diagonal is None.
    """
    matrix: list[list[float | None]] = []
    for i in tasks:
        row = []
        for j in tasks:
            pair = together.get(frozenset((i, j)), {}) if i != j else {}
            row.append(gain(pair.get(j), alone.get(j), higher_is_better[j]) if i != j else None)
        matrix.append(row)
    return matrix


def affinity_matrix(tasks: Sequence[str], logs: Iterable[Mapping[str, float]]) -> list[list[float | None]] | None:
    """T x T mean of lookahead affinities Z(i->j) over ``logs`` (Fifty et al., NeurIPS 2021).

    Each log maps ``"i->j"`` to Z, as ``mtlcore.diagnostics`` writes per
    epoch. Entry [i][j] is the mean Z(i->j): rows are the task stepped on,
    columns the task whose loss changed. None when no log has any entry.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for log in logs:
        for key, value in (log or {}).items():
            if value is not None and math.isfinite(value):
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
    if not sums:
        return None
    return [[sums[k] / counts[k] if (k := f"{i}->{j}") in sums else None for j in tasks] for i in tasks]


def dominates(p: Mapping[str, float], q: Mapping[str, float], higher_is_better: Mapping[str, bool]) -> bool:
    """True when ``p`` is at least as good as ``q`` on every task and better on one."""
    better = False
    for task, up in higher_is_better.items():
        a, b = (p[task], q[task]) if up else (-p[task], -q[task])
        if a < b:
            return False
        better = better or a > b
    return better


def pareto_front(points: Sequence[Mapping[str, float]], higher_is_better: Mapping[str, bool]) -> list[int]:
    """Indices of the points that no other point dominates, in input order.

    Each point maps every task of ``higher_is_better`` to its value; the
    direction of each task (maximise accuracy, minimise MAE) is respected.
    Two identical points are both on the front.
    """
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, higher_is_better) for k, q in enumerate(points) if k != i)]
