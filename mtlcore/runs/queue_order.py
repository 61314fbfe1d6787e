"""Which queued run starts next: round-robin between people, not first come first served.

In class thirty students share one or two workers. First come first served
lets a student who pressed Start three times delay everybody else's first
run by three runs; a fair queue gives each person one turn at a time.

The rule (``fair_order``), applied at every claim:

1. A run belongs to its owner's *queue*: the owner is the hash of the
   browser's key (``owner_key``); a run without a key (command line, older
   rows) belongs to its folded display name (``owners.fold_name``).
2. The next owner served is the one whose **last start is oldest**: the
   latest ``started_at`` of any of their runs, where an owner none of whose
   runs has started yet comes first of all. Ties (e.g. two newcomers) go to
   the owner whose oldest queued run was queued first.
3. That owner's **oldest queued run** starts.

Starting a run makes its owner's last start "now", which sends them to the
back of the line: with A's three runs queued before B's and C's one each,
the runs start A, B, C, A, A. Nobody waits for more than one run of each
other person queued, and a person alone on the server still gets every run
at once, in the order they queued them.

A worker that packs runs (``worker.claim_partners``) claims the lead run by
this rule and then every queued run that trains packed with it, whoever's
it is: those start earlier than their turn, which delays nobody.

``queue_places`` states each waiting run's place under the same rule and
an estimated start: with ``workers`` runs training at a time, each run
taking about the median of recent runs' durations. The estimate ignores
packing, which can only start runs earlier.
"""
from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..owners import fold_name

# How many recently ended runs the duration estimate is the median of.
RECENT_RUNS = 20


def owner_id(owner_name: str, owner_key: str | None) -> str:
    """The queue a run waits in: its key's hash, else its folded name (keyless rows never share a key's queue)."""
    return f"key:{owner_key}" if owner_key is not None else f"name:{fold_name(owner_name)}"


@dataclass(frozen=True)
class Waiting:
    """One queued run as the rule sees it: its id, its owner's queue and when it was queued (with its rowid)."""

    run_id: str
    owner: str  # owner_id(...)
    queued_at: float
    rowid: int = 0


def fair_order(queued: Iterable[Waiting], last_start: Mapping[str, float]) -> list[str]:
    """The ids of ``queued`` in the order they would start one at a time under the rule (module docstring).

    ``last_start`` maps an owner queue (``owner_id``) to the latest start
    of any of its runs; owners missing from it have never had a run start.
    """
    by_owner: dict[str, list[Waiting]] = {}
    for run in sorted(queued, key=lambda r: (r.queued_at, r.rowid)):
        by_owner.setdefault(run.owner, []).append(run)
    # Heap of (has started before, last start, oldest queued, rowid, owner): the smallest is served next.
    heap = [(owner in last_start, last_start.get(owner, 0.0), runs[0].queued_at, runs[0].rowid, owner)
            for owner, runs in by_owner.items()]
    heapq.heapify(heap)
    order, served = [], 0
    while heap:
        _, _, _, _, owner = heapq.heappop(heap)
        runs = by_owner[owner]
        order.append(runs.pop(0).run_id)
        served += 1
        if runs:  # back of the line: a start later than every real one, in the order served
            heapq.heappush(heap, (True, float("inf"), served, runs[0].rowid, owner))
    return order


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting run stands: 1-based ``position`` among ``of`` waiting runs, and an estimated start.

    ``estimated_start`` is a time (``time.time()`` seconds) or None when no
    run has ended recently to estimate from.
    """

    position: int
    of: int
    estimated_start: float | None

    def sentence(self, now: float) -> str:
        """E.g. "3rd of 7 in the queue; starts in about 40 s"."""
        text = f"{ordinal(self.position)} of {self.of} in the queue"
        if self.estimated_start is not None:
            text += f"; starts in about {duration_text(max(0.0, self.estimated_start - now))}"
        return text


def typical_duration(durations: Sequence[float]) -> float | None:
    """The median of recent runs' durations in seconds (None without any)."""
    durations = [d for d in durations if d is not None and d >= 0]
    return statistics.median(durations) if durations else None


def estimated_starts(order: Sequence[str], busy_since: Sequence[float], workers: int, duration: float | None,
                     now: float) -> dict[str, float | None]:
    """When each run of ``order`` should start: ``workers`` slots, each run taking ``duration`` seconds.

    ``busy_since`` holds, for each worker training now, when its current
    run (or packed group) started: that slot frees at the start plus
    ``duration`` (now, if that is past). Waiting runs take the earliest
    free slot in turn.
    """
    if duration is None:
        return {run_id: None for run_id in order}
    free = [max(now, started + duration) for started in busy_since]
    free += [now] * max(0, max(1, workers) - len(free))
    heapq.heapify(free)
    starts = {}
    for run_id in order:
        start = heapq.heappop(free)
        starts[run_id] = start
        heapq.heappush(free, start + duration)
    return starts


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def duration_text(seconds: float) -> str:
    """A rough wait: "5 s", "40 s", "3 min"."""
    if seconds < 60:
        return f"{max(1, round(seconds / 5) * 5) if seconds >= 5 else max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"
