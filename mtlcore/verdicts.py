"""One rule for every verdict the lab prints: helps, within noise, hurts, or one seed.

A single run's Delta_m is one draw: train again with another seed and it
moves, often by more than the difference being judged. So a verdict needs
several seeds, and this module decides it the same way everywhere (Compare,
studies, reproductions):

* one seed: "one seed: not enough to tell", whatever the numbers;
* several seeds: for each seed s, Delta_m(s) compares the multi-task run
  of seed s with the single-task baselines of the *same* seed (paired by
  seed, so what the seed changes for both sides cancels out). A percentile
  bootstrap over seeds (Efron & Tibshirani, "An Introduction to the
  Bootstrap", 1993, ch. 13) gives a confidence interval of mean Delta_m:

      CI entirely below 0  -> helps         (Delta_m's sign, Maninis et al. 2019 and
      CI entirely above 0  -> hurts          Nash-MTL: negative = multi-task better)
      CI contains 0        -> within noise

With few seeds the bootstrap interval is rough (with 2 seeds it spans the
two values), so it errs towards "within noise": more seeds narrow it.
Pure Python, no torch, so the pages can call it.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import fmean, stdev
from typing import Any, Mapping, Sequence

from .compare import delta_m

HELPS = "helps"
WITHIN_NOISE = "within noise"
HURTS = "hurts"
ONE_SEED = "one seed: not enough to tell"
NO_DATA = "no complete seed yet"

#: The confidence level of the interval and the number of bootstrap resamples.
CONFIDENCE = 0.95
RESAMPLES = 4000

RULE = ("Verdict rule: Delta_m per seed (multi-task vs single-task of the same seed; negative = multi-task "
        f"better), a {CONFIDENCE:.0%} bootstrap interval of its mean over seeds; helps if the interval is "
        "entirely below 0, hurts if entirely above, otherwise within noise; one seed is not enough to tell.")

__all__ = [
    "CONFIDENCE", "HELPS", "HURTS", "NO_DATA", "ONE_SEED", "RULE", "WITHIN_NOISE",
    "Spread", "Verdict", "bootstrap_interval", "classify", "delta_m_verdict", "spread", "verdict_of_values",
]


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation over seeds (std 0 for one seed)."""

    mean: float
    std: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g}" if self.n > 1 else f"{self.mean:.4g}"


def spread(values: Sequence[float]) -> Spread | None:
    values = [float(v) for v in values]
    if not values:
        return None
    return Spread(fmean(values), stdev(values) if len(values) > 1 else 0.0, len(values))


def bootstrap_interval(values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (at least 2), reproducible by ``seed``."""
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError("A bootstrap interval needs at least two values (seeds).")
    rng = random.Random(seed)
    n = len(values)
    means = sorted(fmean(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    low = means[max(0, math.floor(tail * resamples))]
    high = means[min(resamples - 1, math.ceil((1.0 - tail) * resamples) - 1)]
    return low, high


def classify(low: float, high: float) -> str:
    """helps / hurts / within noise from an interval of Delta_m (negative = multi-task better)."""
    if high < 0:
        return HELPS
    if low > 0:
        return HURTS
    return WITHIN_NOISE


@dataclass(frozen=True)
class Verdict:
    """The verdict on a set of paired seeds, with what it rests on."""

    label: str  # HELPS, WITHIN_NOISE, HURTS, ONE_SEED or NO_DATA
    seeds: tuple[int, ...] = ()
    per_seed: tuple[float, ...] = ()  # Delta_m of each seed, in percent (paper sign)
    interval: tuple[float, float] | None = None  # bootstrap CI of mean Delta_m
    tasks: dict[str, dict[str, Spread | None]] = field(default_factory=dict)  # task -> {"mtl": ., "stl": .}

    @property
    def delta_m(self) -> Spread | None:
        """Mean and spread of Delta_m over the seeds."""
        return spread(self.per_seed)

    @property
    def decided(self) -> bool:
        """True for helps / hurts / within noise (several seeds), False otherwise."""
        return self.label in (HELPS, WITHIN_NOISE, HURTS)

    @property
    def helped(self) -> bool | None:
        """True for helps, False for hurts, None for anything else: for colours."""
        return {HELPS: True, HURTS: False}.get(self.label)

    def sentence(self) -> str:
        """The verdict in one line, with its numbers."""
        dm = self.delta_m
        if self.label == NO_DATA:
            return "No seed has both a multi-task result and every single-task baseline yet."
        if self.label == ONE_SEED:
            return (f"One seed: not enough to tell (Δm = {dm.mean:+.2f}% from seed {self.seeds[0]}; "
                    "add seeds to see whether it is more than noise).")
        low, high = self.interval
        head = {HELPS: "Sharing helps", HURTS: "Sharing hurts (negative transfer)",
                WITHIN_NOISE: "Within noise"}[self.label]
        return (f"{head}: Δm = {dm.mean:+.2f}% ± {dm.std:.2f} over {len(self.seeds)} seeds, "
                f"{CONFIDENCE:.0%} interval [{low:+.2f}, {high:+.2f}] (negative = multi-task better).")

    def to_dict(self) -> dict[str, Any]:
        dm = self.delta_m
        return {
            "verdict": self.label, "sentence": self.sentence(), "seeds": list(self.seeds),
            "delta_m_per_seed": list(self.per_seed), "delta_m": None if dm is None else dm.as_dict(),
            "interval": None if self.interval is None else list(self.interval), "confidence": CONFIDENCE,
            "tasks": {t: {side: None if s is None else s.as_dict() for side, s in sides.items()}
                      for t, sides in self.tasks.items()},
            "rule": RULE,
        }


def verdict_of_values(per_seed: Mapping[int, float] | Sequence[float], seed: int = 0) -> Verdict:
    """The verdict on Delta_m values already computed per seed ({seed: Delta_m} or a list)."""
    items = sorted(per_seed.items()) if isinstance(per_seed, Mapping) else list(enumerate(per_seed))
    items = [(s, float(v)) for s, v in items if v is not None and math.isfinite(float(v))]
    if not items:
        return Verdict(NO_DATA)
    seeds, values = tuple(s for s, _ in items), tuple(v for _, v in items)
    if len(items) == 1:
        return Verdict(ONE_SEED, seeds, values)
    low, high = bootstrap_interval(values, seed=seed)
    return Verdict(classify(low, high), seeds, values, (low, high))


def delta_m_verdict(mtl: Mapping[int, Mapping[str, float]], stl: Mapping[int, Mapping[str, float]],
                    higher_is_better: Mapping[str, bool]) -> Verdict:
    """The verdict from test values per seed: ``mtl[seed][task]`` and ``stl[seed][task]``.

    Only seeds with every task's multi-task value and every task's
    single-task value of that same seed count (paired by seed); the
    per-task means and spreads use those seeds too.
    """
    tasks = list(higher_is_better)
    paired = [s for s in sorted(mtl) if s in stl
              and all(mtl[s].get(t) is not None and stl[s].get(t) for t in tasks)]
    per_seed = {}
    for s in paired:
        try:
            per_seed[s] = delta_m({t: mtl[s][t] for t in tasks}, {t: stl[s][t] for t in tasks}, higher_is_better)
        except ValueError:
            continue
    result = verdict_of_values(per_seed)
    used = result.seeds
    per_task = {t: {"mtl": spread([mtl[s][t] for s in used]), "stl": spread([stl[s][t] for s in used])}
                for t in tasks}
    return Verdict(result.label, result.seeds, result.per_seed, result.interval, per_task)
