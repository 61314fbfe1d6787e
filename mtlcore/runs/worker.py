"""The worker: a long-lived process that trains queued runs one after another.

    python -m mtlcore worker [--home H] [--once]

It imports torch once and then loops (claim the oldest queued run, train it,
record how it ended), so pressing Start shows a first point quickly. A
background thread sends a heartbeat every few seconds; when a worker dies
without a word (SIGKILL, power cut), the missing heartbeat and process tell
the store to mark its run ``interrupted``.

A failing run never takes the worker down: its error is recorded as the
run's message (state ``failed``) and the worker moves on. SIGTERM or Ctrl-C
stop the current run within a second, mark it ``interrupted`` and exit.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from pathlib import Path

import torch

from ..engine import fit
from .callback import StoreCallback
from .processes import worker_name
from .record import CANCELLED, FAILED, INTERRUPTED, RunRecord
from .store import HEARTBEAT_EVERY, RunStore

POLL_EVERY = 0.2  # seconds between looks at an empty queue


def run_worker(home: Path | str | None = None, once: bool = False, idle_exit: float | None = None,
               device: str | None = None) -> int:
    """Train queued runs until stopped; return how many runs it trained.

    ``once``: train at most one run, then return. ``idle_exit``: return after
    that many seconds with an empty queue (None: wait forever). ``device``:
    train on this device whatever the config says (the runner gives each
    worker its own GPU), except that a config asking for ``cpu`` keeps it.
    """
    # Leave one core to the web server so pages stay responsive while we train.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    store = RunStore(home)
    name = worker_name()
    shutdown = threading.Event()
    beat = _Heartbeat(store, name)
    previous_handlers = _stop_on_signals(shutdown)
    try:
        store.register_worker(name, os.getpid(), device)
        beat.start()
        _warm_up()
        return _work(store, name, beat, shutdown, once, idle_exit, device)
    finally:
        beat.stop()
        store.remove_worker(name)
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def _work(store: RunStore, name: str, beat: "_Heartbeat", shutdown: threading.Event, once: bool,
          idle_exit: float | None, device: str | None) -> int:
    """The loop: claim the oldest queued run, train it, repeat; return how many were trained."""
    trained, idle_since = 0, time.monotonic()
    while not shutdown.is_set():
        record = store.claim_next(name)
        if record is None:
            if once or (idle_exit is not None and time.monotonic() - idle_since >= idle_exit):
                break
            shutdown.wait(POLL_EVERY)
            continue
        beat.run_id = record.id
        train_one(store, record, shutdown, device)
        beat.run_id = None
        advance_studies(store)
        trained += 1
        idle_since = time.monotonic()
        if once:
            break
    return trained


def advance_studies(store: RunStore) -> None:
    """Submit the next members of studies waiting on the per-person queue cap.

    A study submits its members through the runner, so each person's cap
    applies; after every run this worker moves studies on, so a study
    finishes even with no browser tab open.
    """
    from ..studies import StudyStore  # imported late: studies build on the runner
    from .runner import Runner

    try:
        StudyStore(store).advance_all(Runner(store, max_workers=0))
    except Exception:  # a study's bookkeeping must never stop the worker
        traceback.print_exc()


def train_one(store: RunStore, record: RunRecord, shutdown: threading.Event | None = None,
              device: str | None = None) -> str:
    """Train one claimed run and record how it ended; return its final state."""
    shutdown = shutdown or threading.Event()
    if device is not None and record.config.device == "cpu":
        device = None  # the person asked for the CPU on purpose
    try:
        result = fit(record.config, callbacks=[StoreCallback(store, record.id, shutdown)], device=device)
    except Exception as error:  # a bad run must not kill the worker
        traceback.print_exc()  # the full story goes to the worker's log file
        store.finish_run(record.id, FAILED, _one_line(error))
        return FAILED
    state, message = result.status, result.message
    if state == CANCELLED and shutdown.is_set():
        state, message = INTERRUPTED, "Its worker was shut down during training; the metrics logged so far are kept."
    store.finish_run(record.id, state, message, result.summary)
    return state


def _warm_up() -> None:
    """Pay torch's one-off lazy imports now, so that a person's first run starts at once.

    Creating the first optimizer imports torch._dynamo, which takes seconds.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _stop_on_signals(shutdown: threading.Event) -> dict:
    """SIGTERM and SIGINT ask for a clean stop instead of killing the process mid-write.

    Returns the handlers they replace, to be put back when the worker returns.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}  # handlers can only be set from the main thread (e.g. a worker inside a test)

    def handler(signum, frame):
        shutdown.set()

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


class _Heartbeat(threading.Thread):
    """Beats every HEARTBEAT_EVERY seconds in the background, even during a long epoch."""

    def __init__(self, store: RunStore, worker: str):
        super().__init__(name="mtl-heartbeat", daemon=True)
        self.store, self.worker = store, worker
        self.run_id: str | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_EVERY):
            try:
                self.store.heartbeat(self.worker, self.run_id)
            except Exception:  # a busy database now and then is no reason to stop beating
                traceback.print_exc()

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=5)
