"""Trajectories computed in a background thread, for a page that draws them as they grow.

``ToyComparison(methods, steps).start()`` runs every method's batched
trajectories (``trajectories.py``) in one thread, all methods stepped
together (``step_together``: one graph for every method's points per step),
a chunk of steps at a time (at most half a second of them), so that the
first paths can be drawn after the first chunk and grow every second
after it. ``snapshot()`` gives what is done so far; ``stop()`` asks the
thread to finish after its current step.

Cost per step is the thread's own CPU time (``time.thread_time``), so the
page's redraws and other programs on the machine do not count: a method's
own update, plus the shared losses and gradients in full (what it would pay
alone, since they cost as much for one method's points as for all).
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Sequence

import numpy as np

from .problem import STARTS, STEPS
from .trajectories import Trajectories, ToyOptimisation, step_together

#: Steps per chunk: the first is short, so the first paths appear within a second or two (even
#: beside Nash-MTL's 0.2 s steps); later chunks double up to CHUNK, to spend less time copying points.
FIRST_CHUNK, CHUNK = 5, 2000
#: A chunk also ends after this much wall-clock time, so the paths on the page grow every second or so
#: however slow the methods (2,000 steps of six methods take 10 s or more in the app).
PUBLISH_SECONDS = 0.5
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
        self.record_every = max(1, self.steps // MAX_POINTS)  # a point every this many steps, evenly spaced
        self.first_chunk = FIRST_CHUNK
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._results: dict[str, Trajectories] = {}
        self._published_at: float | None = None  # when the last chunk's paths were published (wall clock)
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

    def seconds_left(self) -> float | None:
        """Wall-clock seconds until the last step at the pace so far (None before the first chunk, 0 once ended).

        Every running method steps together, so all have done the same steps; one that failed stopped behind
        them, hence the most steps any has done.
        """
        if self._thread is None:
            return None
        if not self.running:
            return 0.0
        with self._lock:
            done = max((t.steps for t in self._results.values()), default=0)
            published = self._published_at
        if published is None:
            return None
        # The paths are published a chunk at a time: the pace of the steps published, minus the time since.
        left = time_left(published - self.started_at, done, self.steps)
        return None if left is None else max(0.0, left - (time.time() - published))

    def snapshot(self) -> dict[str, Trajectories]:
        """Each method's paths so far (methods not yet begun are absent)."""
        with self._lock:
            return dict(self._results)

    def _work(self) -> None:
        runs: dict[str, ToyOptimisation] = {}
        for method in self.methods:
            try:
                runs[method] = ToyOptimisation(method, self.starts, seed=self.seed)
            except Exception as error:  # a method that cannot start here says why; the others run
                self.errors[method] = f"{type(error).__name__}: {error}"
        pieces: dict[str, list[np.ndarray]] = {m: [] for m in runs}
        cpu = {m: 0.0 for m in runs}
        chunk = self.first_chunk
        while runs and not self._stop.is_set():
            # Every method a chunk of steps, all of them in one graph per step (step_together).
            names = list(runs)
            steps = min(chunk, self.steps - runs[names[0]].steps_done)  # all began together: the same count
            recorded: dict[str, list[np.ndarray]] = {m: [] for m in names}
            seconds = [0.0] * len(names)
            began = time.monotonic()
            for k in range(steps):
                if self._stop.is_set():  # Stop is heard between steps, not after a chunk of a slow method
                    break
                if k and time.monotonic() - began >= PUBLISH_SECONDS:
                    break  # publish what is done; the next chunk goes on from here
                if runs[names[0]].steps_done % self.record_every == 0:  # every running method is at this step
                    for m in names:
                        recorded[m].append(runs[m].positions())
                failed = step_together([runs[m] for m in names], seconds)
                for i in reversed(range(len(names))):  # a solver failing mid-way: keep what it did, go on without it
                    if failed[i] is not None:
                        m = names.pop(i)
                        self.errors[m] = f"{type(failed[i]).__name__}: {failed[i]}"
                        cpu[m] += seconds.pop(i)
                        self._publish(m, runs.pop(m), pieces[m], recorded[m], cpu[m])
                if not names:
                    break
            for m, spent in zip(names, seconds):
                cpu[m] += spent
                self._publish(m, runs[m], pieces[m], recorded[m], cpu[m])
                if runs[m].steps_done >= self.steps:
                    del runs[m]
            chunk = min(2 * chunk, CHUNK)
        with self._lock:
            self._results = {m: replace(t, error=self.errors.get(m)) for m, t in self._results.items()}
        self.ended_at = time.time()

    def _publish(self, method: str, run: ToyOptimisation, pieces: list[np.ndarray], recorded: list[np.ndarray],
                 seconds: float) -> None:
        """Add a chunk's recorded points to ``method``'s paths and show them (with the point it has reached)."""
        if recorded:
            pieces.append(np.stack(recorded))
        points = np.concatenate(pieces + [run.positions()[None]], axis=0).transpose(1, 0, 2)
        with self._lock:
            self._results[method] = Trajectories(method, points, run.steps_done, seconds,
                                                 finished=run.steps_done >= self.steps, starts=tuple(self.starts))
            self._published_at = time.time()


def time_left(elapsed: float, done: int, total: int) -> float | None:
    """Seconds for the ``total - done`` steps left if they go at the pace of the ``done`` in ``elapsed`` (None: no pace yet)."""
    if done <= 0:
        return None
    return elapsed / done * max(total - done, 0)


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
