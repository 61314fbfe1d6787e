"""Trajectories computed in the background, for a page that draws them as they grow.

``ToyComparison(methods, steps).start()`` runs every method's batched
trajectories (``trajectories.py``), all methods stepped together
(``step_together``: the losses and gradients at every method's points
computed at once, one Adam call for all of them), a chunk of steps at a
time (at most half a second of them), so that the first paths can be
drawn after the first chunk and grow every second after it.
``snapshot()`` gives what is done so far; ``stop()`` asks the work to end
after its current step.

Where the work runs: ``processes=0`` (the default), a thread of this
process. ``processes=N``: up to N processes of their own, the methods dealt
among them so that each has about the same work per step
(``deal_methods``), each process stepping its share together. The page
uses processes: a thread shares the interpreter lock with the app's
server, which draws the page every second, so in the app it ran at less
than half the pace it has alone, on one core of two; processes also use
the other core (four methods in Chromium on 2 cores: about 100 steps a
second in a thread, 420 in two processes). They are forked from a server
process that has already loaded PyTorch and the methods (the standard
library's ``forkserver``, preloading ``toy/worker.py``), so a new one
starts in a fraction of a second. Every process pays the shared losses
and gradients for its own points.

Cost per step is the computing thread's own CPU time (``time.thread_time``),
so the page's redraws and other programs on the machine do not count: a
method's own update, plus the shared losses and gradients in full (what it
would pay alone, since they cost as much for one method's points as for all).
"""
from __future__ import annotations

import multiprocessing
import os
import queue as queues
import threading
import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from .problem import STARTS, STEPS
from .trajectories import Trajectories, ToyOptimisation, joint_optimizer, step_together

#: Steps per chunk: the first is short, so the first paths appear within a second or two (even
#: beside Nash-MTL's 0.2 s steps); later chunks double up to CHUNK, to spend less time copying points.
FIRST_CHUNK, CHUNK = 5, 2000
#: A chunk also ends after this much wall-clock time, so the paths on the page grow every second or so
#: however slow the methods (2,000 steps of six methods take 10 s or more in the app).
PUBLISH_SECONDS = 0.5
#: At most this many recorded points per start and method (what a browser can redraw each second).
MAX_POINTS = 500
#: Each method's own CPU seconds per step on this machine, by ``measure_step_costs`` (for ``deal_methods``).
STEP_SECONDS: dict[str, float] = {}


class ToyComparison:
    """Several methods' trajectories from every start, growing in the background."""

    def __init__(self, methods: Sequence[str], steps: int = STEPS, starts: Sequence[Sequence[float]] = STARTS,
                 seed: int = 0, processes: int = 0):
        if not methods:
            raise ValueError("Pick at least one weighting method.")
        if steps < 1:
            raise ValueError(f"steps must be 1 or more, got {steps}.")
        self.methods = list(dict.fromkeys(methods))
        self.steps = int(steps)
        self.starts = [tuple(map(float, s)) for s in starts]
        self.seed = seed
        self.processes = max(0, int(processes))
        self.record_every = max(1, self.steps // MAX_POINTS)  # a point every this many steps, evenly spaced
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._process_stop = None  # the processes' own stop signal, when they compute
        self._results: dict[str, Trajectories] = {}
        self._published_at: dict[str, float] = {}  # when each method's last paths came (wall clock)
        self.errors: dict[str, str] = {}
        self.groups: list[list[str]] = []  # the methods each process computes (none: a thread of this one)
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ToyComparison(methods={self.methods!r}, steps={self.steps})"

    def start(self) -> "ToyComparison":
        self.started_at = time.time()
        wanted = min(self.processes, len(self.methods))
        if wanted:
            # No more computing processes than cores on the whole server: beyond that they gain nothing,
            # and each holds memory. A busy server computes in a thread instead.
            free = (os.cpu_count() or 1) - len(multiprocessing.active_children())
            self.groups = deal_methods(self.methods, min(wanted, free)) if free > 0 else []
        target = self._watch if self.groups else self._work
        self._thread = threading.Thread(target=target, name="toy-trajectories", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._process_stop is not None:
            self._process_stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the work to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def seconds_left(self) -> float | None:
        """Wall-clock seconds until the last step at the pace so far (None before the first chunk, 0 once ended).

        Each method's paths come a chunk at a time: the pace of its steps so far, minus the time since they
        came; the slowest of those still going decides. A method that failed has stopped.
        """
        if self._thread is None:
            return None
        if not self.running:
            return 0.0
        with self._lock:
            going = {m: (t.steps, self._published_at[m]) for m, t in self._results.items()
                     if not t.finished and m not in self.errors}
            waiting = len(self._results) < len(self.methods) - len(self.errors)
        if waiting or not going:
            return None
        now = time.time()
        lefts = [time_left(published - self.started_at, done, self.steps) for done, published in going.values()]
        if any(left is None for left in lefts):
            return None
        return max(max(0.0, left - (now - published)) for left, (_, published) in zip(lefts, going.values()))

    def snapshot(self) -> dict[str, Trajectories]:
        """Each method's paths so far (methods not yet begun are absent)."""
        with self._lock:
            return dict(self._results)

    # ----- where the work runs ------------------------------------------------------------
    def _work(self) -> None:
        """In this thread: every method, stepped together."""
        compute(self.methods, self.steps, self.starts, self.seed, self.record_every,
                self._stop.is_set, self._store, self._fail)
        self._end()

    def _watch(self) -> None:
        """Start a process per group of methods, then take in what they send until every one has ended."""
        context = process_context()
        self._process_stop = context.Event()
        if self._stop.is_set():
            self._process_stop.set()
        messages = context.Queue()
        processes = [context.Process(target=compute_in_process, name=f"toy-trajectories-{k}", daemon=True,
                                     args=(k, group, self.steps, self.starts, self.seed, self.record_every,
                                           self._process_stop, messages))
                     for k, group in enumerate(self.groups)]
        try:
            for process in processes:
                process.start()
        except Exception:  # no process could be started here (a limit on processes, say): compute in this thread
            self._process_stop.set()
            for process in processes:
                if process.pid is not None:
                    process.join(timeout=10)
            self.groups = []
            with self._lock:
                self._results, self._published_at = {}, {}
            self._work()
            return
        ended: set[int] = set()
        while len(ended) < len(processes):
            try:
                kind, index, method, value = messages.get(timeout=0.5)
            except queues.Empty:
                if not any(p.is_alive() for p in processes):  # every one gone, and nothing more to read
                    break
                continue
            if kind == "paths":
                self._store(method, value)
            elif kind == "error":
                self._fail(method, value)
            else:
                ended.add(index)
        for k, process in enumerate(processes):
            process.join(timeout=10)
            if k not in ended:  # killed (out of memory, a signal) or crashed: say so for what it left unfinished
                for method in self.groups[k]:
                    run = self._results.get(method)
                    if method not in self.errors and (run is None or not run.finished):
                        self._fail(method, f"the process computing it ended unexpectedly (exit code "
                                           f"{process.exitcode}); its paths so far are kept")
        self._end()

    def _store(self, method: str, paths: Trajectories) -> None:
        with self._lock:
            self._results[method] = paths
            self._published_at[method] = time.time()

    def _fail(self, method: str, text: str) -> None:
        self.errors[method] = text

    def _end(self) -> None:
        with self._lock:
            self._results = {m: replace(t, error=self.errors.get(m)) for m, t in self._results.items()}
        self.ended_at = time.time()


def compute(methods: Sequence[str], steps: int, starts: Sequence[Sequence[float]], seed: int, record_every: int,
            stopped: Callable[[], bool], publish: Callable[[str, Trajectories], None],
            fail: Callable[[str, str], None]) -> None:
    """Step every method from every start together, a chunk at a time; ``publish`` each one's paths after
    every chunk, and ``fail`` a method that cannot start or fails mid-way (the others go on).

    ``stopped`` is asked between steps. Points are recorded at every ``record_every``-th step of the run.
    """
    runs: dict[str, ToyOptimisation] = {}
    for method in methods:
        try:
            runs[method] = ToyOptimisation(method, starts, seed=seed)
        except Exception as error:  # a method that cannot start here says why; the others run
            fail(method, f"{type(error).__name__}: {error}")
    optimizer = joint_optimizer(list(runs.values())) if runs else None  # one Adam call a step for all of them
    pieces: dict[str, list[np.ndarray]] = {m: [] for m in runs}
    cpu = {m: 0.0 for m in runs}

    def publish_chunk(method: str, run: ToyOptimisation, recorded: list[np.ndarray]) -> None:
        if recorded:
            pieces[method].append(np.stack(recorded))
        points = np.concatenate(pieces[method] + [run.positions()[None]], axis=0).transpose(1, 0, 2)
        publish(method, Trajectories(method, points, run.steps_done, cpu[method],
                                     finished=run.steps_done >= steps, starts=tuple(map(tuple, starts))))

    chunk = FIRST_CHUNK
    while runs and not stopped():
        # Every method a chunk of steps, all of them together at each step (step_together).
        names = list(runs)
        todo = min(chunk, steps - runs[names[0]].steps_done)  # all began together: the same count
        recorded: dict[str, list[np.ndarray]] = {m: [] for m in names}
        seconds = [0.0] * len(names)
        began = time.monotonic()
        for k in range(todo):
            if stopped():  # Stop is heard between steps, not after a chunk of a slow method
                break
            if k and time.monotonic() - began >= PUBLISH_SECONDS:
                break  # publish what is done; the next chunk goes on from here
            if runs[names[0]].steps_done % record_every == 0:  # every running method is at this step
                for m in names:
                    recorded[m].append(runs[m].positions())
            failed = step_together([runs[m] for m in names], seconds, optimizer)
            for i in reversed(range(len(names))):  # a solver failing mid-way: keep what it did, go on without it
                if failed[i] is not None:
                    m = names.pop(i)
                    fail(m, f"{type(failed[i]).__name__}: {failed[i]}")
                    cpu[m] += seconds.pop(i)
                    publish_chunk(m, runs.pop(m), recorded[m])
            if not names:
                break
        for m, spent in zip(names, seconds):
            cpu[m] += spent
            publish_chunk(m, runs[m], recorded[m])
            if runs[m].steps_done >= steps:
                del runs[m]
        chunk = min(2 * chunk, CHUNK)


def compute_in_process(index: int, methods: Sequence[str], steps: int, starts: Sequence[Sequence[float]], seed: int,
                       record_every: int, stop, messages) -> None:
    """What a computing process runs: ``compute``, its paths and failures sent back on ``messages``."""
    torch.set_num_threads(1)  # tiny tensors: a second thread only waits for the other process's core
    try:
        compute(methods, steps, starts, seed, record_every, stop.is_set,
                lambda method, paths: messages.put(("paths", index, method, paths)),
                lambda method, text: messages.put(("error", index, method, text)))
    finally:
        messages.put(("ended", index, None, None))


def deal_methods(methods: Sequence[str], groups: int) -> list[list[str]]:
    """Share ``methods`` among ``groups`` processes so that each has about the same work per step.

    The dearest method first, each to the group with the least work so far (the longest-processing-time
    rule), by ``STEP_SECONDS`` as ``measure_step_costs`` measured them (a method not measured counts as the
    dearest measured one). Each group keeps the order the methods were picked in.
    """
    groups = max(1, min(int(groups), len(methods)))
    dearest = max(STEP_SECONDS.values(), default=1.0)
    cost = {m: STEP_SECONDS.get(m, dearest) for m in methods}
    loads, dealt = [0.0] * groups, [[] for _ in range(groups)]
    for method in sorted(methods, key=lambda m: -cost[m]):
        k = loads.index(min(loads))
        dealt[k].append(method)
        loads[k] += cost[method]
    order = {m: i for i, m in enumerate(methods)}
    return [sorted(group, key=order.get) for group in dealt if group]


def process_context():
    """The standard library's forkserver where there is one (Linux, macOS), preloading ``worker.py``, whose
    import loads what a first step needs; elsewhere a fresh interpreter per process ("spawn")."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([f"{__package__}.worker"])
    return context


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


def start_process_server() -> None:
    """Start the forkserver that computing processes are forked from, and return at once: it loads PyTorch
    and the methods (``worker.py``) in its own process, a few seconds, while the caller goes on; the first
    process started waits for that. Nothing to do where there is no forkserver, or once it runs."""
    if process_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def warm_up(methods: Sequence[str] = (), processes: bool = False) -> None:
    """Pay once what the very first step costs: PyTorch loads much of itself at an optimiser's first
    step, and the gradient methods import torchjd and their solvers (cvxpy, qpsolvers) when set up.

    ``processes``: also start the server that forks computing processes (it loads the same, once).
    Call it when a page opens, so that Start draws its first paths at once.
    """
    context = process_context() if processes else None
    if context is not None:
        start_process_server()  # first: it loads in its own process, beside the work below
    ToyOptimisation("equal", [(0.0, 0.0)]).run(2)
    for method in methods:
        try:
            ToyOptimisation(method).run(1)
        except Exception:  # a method that cannot start says so when it is run
            pass
    if context is not None:  # wait until the server has loaded (it forks nothing before): a process doing nothing
        idle = context.Process(target=int, name="toy-warm-up", daemon=True)
        idle.start()
        idle.join(timeout=120)


def measure_step_costs(methods: Sequence[str], steps: int = 5) -> None:
    """Time each method's own update (its ``Weighting`` call and Adam, not the shared losses and gradients) on
    the five starts, the least of ``steps`` after a first one, into ``STEP_SECONDS`` for ``deal_methods``.

    A second for all of them, most of it Nash-MTL's (0.2 s a step). The least, as a busy machine only ever
    adds time: beside the forkserver loading, FAMO's update once took 7.5 ms for four steps in a row, 0.6 ms
    after.
    """
    for method in methods:
        try:
            run = ToyOptimisation(method)
            run.step()
            seconds = []
            for _ in range(steps):
                losses, jacobians = run.batched_losses()
                begin = time.thread_time()
                run.step_from(losses, jacobians)
                seconds.append(time.thread_time() - begin)
            STEP_SECONDS[method] = min(seconds)
        except Exception:  # a method that cannot start says so when it is run
            pass
