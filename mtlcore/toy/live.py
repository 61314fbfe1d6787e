"""Trajectories computed in a background thread, for a page that draws them as they grow.

``ToyComparison(methods, steps).start()`` runs every method's batched
trajectories (``trajectories.py``) in one thread, a chunk of steps of each
method in turn, so that all methods advance together and the first paths
can be drawn after the first chunk. ``snapshot()`` gives what is done so
far; ``stop()`` asks the thread to finish after its current chunk.

Cost per step is the thread's own CPU time (``time.thread_time``), so the
page's redraws and other programs on the machine do not count.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Sequence

import numpy as np

from .problem import STARTS, STEPS
from .trajectories import Trajectories, ToyOptimisation

#: Steps of each method per turn: the first turn is short, so the first paths appear within a
#: second or two; later turns double up to CHUNK, to spend less time copying points.
FIRST_CHUNK, CHUNK = 20, 2000
#: At most this many recorded points per start and method (what a browser can redraw each second).
MAX_POINTS = 500


class ToyComparison:
    """Several methods' trajectories from every start, growing in a background thread."""

    def __init__(self, methods: Sequence[str], steps: int = STEPS, starts: Sequence[Sequence[float]] = STARTS,
                 seed: int = 0):
        if not methods:
            raise ValueError("Pick at least one weighting method.")
        if steps < 1:
            raise ValueError(f"steps must be 1 or more, got {steps}.")
        self.methods = list(dict.fromkeys(methods))
        self.steps = int(steps)
        self.starts = [tuple(map(float, s)) for s in starts]
        self.seed = seed
        self.record_every = max(1, self.steps // MAX_POINTS)
        self.first_chunk = FIRST_CHUNK  # each chunk records its first point: spacing need not be even
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._results: dict[str, Trajectories] = {}
        self.errors: dict[str, str] = {}
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ToyComparison(methods={self.methods!r}, steps={self.steps})"

    def start(self) -> "ToyComparison":
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._work, name="toy-trajectories", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> dict[str, Trajectories]:
        """Each method's paths so far (methods not yet begun are absent)."""
        with self._lock:
            return dict(self._results)

    def _work(self) -> None:
        runs: dict[str, ToyOptimisation | None] = {m: None for m in self.methods}  # set up at its first turn
        pieces = {m: [] for m in runs}
        cpu = {m: 0.0 for m in runs}
        chunk = self.first_chunk
        while runs and not self._stop.is_set():
            for method in list(runs):
                try:
                    if runs[method] is None:  # here, so the first method draws before the others are set up
                        runs[method] = ToyOptimisation(method, self.starts, seed=self.seed)
                    run = runs[method]
                    begin = time.thread_time()  # the steps' cost, without the set-up
                    pieces[method].append(run.run(min(chunk, self.steps - run.steps_done), self.record_every))
                except Exception as error:  # a solver failing mid-way: keep what was done
                    self.errors[method] = f"{type(error).__name__}: {error}"
                    del runs[method]
                    continue
                cpu[method] += time.thread_time() - begin
                points = np.concatenate(pieces[method] + [run.positions()[None]], axis=0).transpose(1, 0, 2)
                done = run.steps_done >= self.steps
                with self._lock:
                    self._results[method] = Trajectories(method, points, run.steps_done, cpu[method], finished=done,
                                                         starts=tuple(self.starts))
                if done:
                    del runs[method]
                if self._stop.is_set():
                    break
            chunk = min(2 * chunk, CHUNK)
        with self._lock:
            self._results = {m: replace(t, error=self.errors.get(m)) for m, t in self._results.items()}
        self.ended_at = time.time()


def update_directions(point: Sequence[float], methods: Sequence[str]) -> dict[str, np.ndarray]:
    """Each method's combined update direction at ``point``: minus what it hands the optimiser at a first step there.

    The direction the parameter would move under plain gradient descent
    (Adam then rescales each coordinate). Methods that fail here are left out.
    """
    directions = {}
    for method in methods:
        try:
            run = ToyOptimisation(method, [point])
            run.step_gradient()
            directions[method] = -run.gradient()[0]
        except Exception:
            continue
    return directions


def warm_up(methods: Sequence[str] = ()) -> None:
    """Pay once what the very first step costs: PyTorch loads much of itself at an optimiser's first
    step, and the gradient methods import torchjd and their solvers (cvxpy, qpsolvers) when set up.

    Call it when a page opens, so that Start draws its first paths at once.
    """
    ToyOptimisation("equal", [(0.0, 0.0)]).run(2)
    for method in methods:
        try:
            ToyOptimisation(method, [(0.0, 0.0)])
        except Exception:  # a method that cannot start says so when it is run
            pass
