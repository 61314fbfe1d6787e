"""The worker: a long-lived process that trains queued runs, small ones packed together.

    python -m mtlcore worker [--home H] [--once]

It imports torch once and then loops (claim the next queued run, train it,
record how it ended), so pressing Start shows a first point quickly. A
background thread sends a heartbeat every few seconds; when a worker dies
without a word (SIGKILL, power cut), the missing heartbeat and process tell
the store to mark its runs ``interrupted``.

Which run is next is the fair queue's choice (round-robin between people,
mtlcore.runs.queue_order). Packing: with that run the worker also claims, in
one query, the queued runs with the same pack key (decided and stored when
each run was queued, mtlcore.packing.grouping: no dataset is loaded here),
where stacking pays on this worker's device (at most the pack's stored
batch), and trains them with ``fit_many``. A study's dozen
small runs then cost about as much as a few. Each member keeps its own
``StoreCallback``, so its metrics, checkpoints, cancel and ending land in
the store exactly as for a run trained alone; a run that packs with
nothing trains alone with ``fit``, as before.

After every run (or packed group) the worker calls the hooks it was given
(``after_each_run``): the command line hands it the studies' ``advance_studies``,
so a study queues its next members with no page open. The worker itself
knows nothing of studies (studies build on runs, not the other way round).

A failing run never takes the worker down: its error is recorded as the
run's message (state ``failed``) and the worker moves on. When a packed
group fails, its members that had not ended are trained again one by one,
so one bad config fails alone. SIGTERM or Ctrl-C stop the current runs
within a second, mark them ``interrupted`` and exit.

Truthful under stalls and damage: each claimed run comes with a claim token
that every write names (see errors.ClaimLost). A worker paused past the
heartbeat timeout finds its runs marked ``interrupted`` when it wakes; its
next write is refused, and it stops them at once and leaves them so. A data
folder that turns read-only fails the run with one sentence; a database
that cannot be written at all stops the worker with one sentence in its
log. On start it removes ``*.tmp`` files that a kill mid-write left behind.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..engine import Callback, FitResult, fit
from ..devices import resolve_device
from ..packing import fit_many
from ..packing.grouping import packing_enabled, pays_on
from . import integrity
from .callback import StoreCallback
from .steering_callback import SteeringCallback
from .errors import ClaimLost, StoreDamaged, StoreError, StoreUnwritable
from .processes import worker_name
from .record import CANCELLED, FAILED, FINAL_STATES, INTERRUPTED, RunRecord
from .runner import threads_per_worker
from .store import HEARTBEAT_EVERY, RunStore

POLL_EVERY = 0.2  # seconds between looks at an empty queue
# What a worker calls after each run or packed group, with its store (e.g. mtlcore.studies.advance_studies).
AfterRun = Callable[[RunStore], object]
SHUTDOWN_MESSAGE = "Its worker was shut down during training; the metrics logged so far are kept."


def run_worker(home: Path | str | None = None, once: bool = False, idle_exit: float | None = None,
               device: str | None = None, after_each_run: Sequence[AfterRun] = ()) -> int:
    """Train queued runs until stopped; return how many runs it trained.

    ``once``: train at most one run (or one packed group), then return.
    ``idle_exit``: return after that many seconds with an empty queue (None:
    wait forever). ``device``: train on this device whatever the config says
    (the runner gives each worker its own GPU), except that a config asking
    for ``cpu`` keeps it. ``after_each_run``: called with the store after
    every run or packed group (see ``call_hooks``).
    """
    # The cores shared out between the workers, one left to the web server (runner.threads_per_worker).
    torch.set_num_threads(_threads())
    store = RunStore(home)
    name = worker_name()
    shutdown = threading.Event()
    beat = _Heartbeat(store, name)
    previous_handlers = _stop_on_signals(shutdown)
    trained = [0]
    try:
        store.register_worker(name, os.getpid(), device)
        for sentence in integrity.tidy_up(store):
            _log(sentence)
        beat.start()
        _warm_up()
        with store.kept_open():  # many small writes: each several times cheaper
            _work(store, name, beat, shutdown, once, idle_exit, device, trained, tuple(after_each_run))
    except (StoreUnwritable, StoreDamaged) as error:  # the store itself cannot be used: say so and stop
        _log(f"Worker stopped: {error}")
    finally:
        beat.stop()
        try:
            store.remove_worker(name)
        except StoreError:
            pass  # the same unwritable store: already said
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    return trained[0]


def _work(store: RunStore, name: str, beat: "_Heartbeat", shutdown: threading.Event, once: bool,
          idle_exit: float | None, device: str | None, trained: list[int], after_each_run: tuple[AfterRun, ...]
          ) -> None:
    """The loop: claim the next queued run (fair queue) and its packing partners, train them, repeat.

    Counts the runs trained in ``trained[0]`` (kept when the store fails part-way).
    """
    idle_since = time.monotonic()
    while not shutdown.is_set():
        lead = store.claim_next(name)
        if lead is None:
            if once or (idle_exit is not None and time.monotonic() - idle_since >= idle_exit):
                break
            shutdown.wait(POLL_EVERY)
            continue
        beat.runs = {lead.id: lead.claim}  # beat for it while its partners are looked for
        group = [lead, *claim_partners(store, name, lead, device)]
        beat.runs = {record.id: record.claim for record in group}
        if len(group) == 1:
            train_one(store, lead, shutdown, device)
        else:
            train_group(store, group, shutdown, device)
        beat.runs = {}
        call_hooks(after_each_run, store)
        trained[0] += len(group)
        idle_since = time.monotonic()
        if once:
            break


def claim_partners(store: RunStore, worker: str, lead: RunRecord, device: str | None = None,
                   limit: int | None = None) -> list[RunRecord]:
    """Claim the queued runs to train packed with ``lead`` (already claimed); return those claimed.

    The queued runs with ``lead``'s stored pack key, whoever's they are,
    in the fair queue's order, at most ``limit`` (None: the lead's stored
    pack batch) with ``lead`` (``RunStore.claim_pack``: one query, only
    runs still queued). None when packing is off (MTL_PACKING=0), when
    ``lead`` trains alone, or when stacking its model does not pay on this
    worker's device (a CNN on a CPU), a question its stored ``pack_on_cpu``
    answers without building the model.
    """
    if not packing_enabled() or lead.pack_key is None:
        return []
    try:
        where = _device_for(lead.config, device) or resolve_device(lead.config.device)
    except ValueError:  # a device this machine lacks: fit says so, for the run alone
        return []
    if not pays_on(where, lead.pack_on_cpu):
        return []
    return store.claim_pack(worker, lead, limit)


def train_one(store: RunStore, record: RunRecord, shutdown: threading.Event | None = None,
              device: str | None = None) -> str:
    """Train one claimed run and record how it ended; return its final state."""
    shutdown = shutdown or threading.Event()
    callback = StoreCallback(store, record.id, shutdown, claim=record.claim)
    steer = SteeringCallback(store, record.id, record.claim, stopping=callback.should_stop,
                             before_hold=callback.flush, shutdown=shutdown)  # live steering, pause (steering.py)
    try:
        result = fit(record.config, callbacks=[steer, callback], device=_device_for(record.config, device))
    except Exception as error:  # a bad run must not kill the worker
        if callback.lost is not None:  # it stopped because the run is no longer ours: nothing to record
            return INTERRUPTED
        if isinstance(error, StoreError):
            _log(f"Run {record.id} stopped: {error}")  # one sentence says it all (e.g. a read-only folder)
        else:
            traceback.print_exc()  # the full story goes to the worker's log file
        return _finish(store, record, FAILED, _one_line(error))
    return _record_ending(store, record, result, shutdown, callback)


def train_group(store: RunStore, records: list[RunRecord], shutdown: threading.Event | None = None,
                device: str | None = None) -> list[str]:
    """Train claimed runs that pack together with ``fit_many``; record how each ended; return their states.

    Every run has its own StoreCallback, so cancelling one stops that one
    alone (and it shows as cancelled at once); a shutdown stops them all.
    When training raises, the members that had already ended keep their
    result and the others are trained again one by one, so that a config
    that fails only fails itself.
    """
    shutdown = shutdown or threading.Event()
    callbacks = [StoreCallback(store, record.id, shutdown, end_on_cancel=True, claim=record.claim)
                 for record in records]
    endings = [_Ending() for _ in records]
    # Live steering reaches a packed member's loss weights; its learning rate and pause are refused (steering.py).
    steers = [SteeringCallback(store, record.id, record.claim, packed=len(records), stopping=cb.should_stop,
                               shutdown=shutdown) for record, cb in zip(records, callbacks)]
    try:
        fit_many([record.config for record in records],
                 [[steer, cb, ending] for steer, cb, ending in zip(steers, callbacks, endings)],
                 device=_device_for(records[0].config, device))
    except Exception as error:  # the members without a result are retried alone below
        if isinstance(error, StoreError):
            _log(f"A packed group of {len(records)} runs stopped: {error}")
        else:
            traceback.print_exc()
    return [
        _record_ending(store, record, ending.result, shutdown, callback) if ending.result is not None
        else INTERRUPTED if callback.lost is not None  # no longer ours: leave it as the store says
        else _retry_alone(store, record, shutdown, device)
        for record, callback, ending in zip(records, callbacks, endings)
    ]


class _Ending(Callback):
    """Keeps how one member's training ended (fit_many returns nothing when it raises part-way)."""

    def __init__(self):
        self.result: FitResult | None = None

    def on_fit_end(self, run, result: FitResult) -> None:
        self.result = result


def _retry_alone(store: RunStore, record: RunRecord, shutdown: threading.Event, device: str | None) -> str:
    """Train a member of a failed group on its own, unless it has already ended or the worker is stopping."""
    state = store.get_run(record.id).state
    if state in FINAL_STATES:  # cancelled while the group trained
        return state
    if shutdown.is_set():
        return _finish(store, record, INTERRUPTED, SHUTDOWN_MESSAGE)
    return train_one(store, record, shutdown, device)


def _record_ending(store: RunStore, record: RunRecord, result: FitResult, shutdown: threading.Event,
                   callback: StoreCallback) -> str:
    """Store how a run's training ended and return its state.

    A run stopped by the worker's shutdown, not by its owner, is
    ``interrupted``: nobody asked for it to stop.
    """
    if callback.lost is not None:  # stopped because the run was taken away: the store's state stands
        return INTERRUPTED
    state, message = result.status, result.message
    if state == CANCELLED and shutdown.is_set() and not callback.cancelled:
        state, message = INTERRUPTED, SHUTDOWN_MESSAGE
    return _finish(store, record, state, message, result.summary)


def _finish(store: RunStore, record: RunRecord, state: str, message: str, summary=None) -> str:
    """Record how a run ended, if this worker still holds it; return the state it ends in.

    A refused ending (ClaimLost) is said in one line of the log and leaves
    the run as the store says (``interrupted``, usually).
    """
    try:
        store.finish_run(record.id, state, message, summary, claim=record.claim)
    except ClaimLost as error:
        _log(str(error))
        return INTERRUPTED
    return state


def _device_for(config, device: str | None) -> str | None:
    """The device to train ``config`` on: the worker's own, unless the person asked for the CPU on purpose."""
    return None if device is not None and config.device == "cpu" else device


def call_hooks(hooks: Sequence[AfterRun], store: RunStore) -> None:
    """Call each after-each-run hook with the store; a failing hook is logged, never stops the worker.

    The hooks run after a run's ending is recorded and before the next
    claim, so what a hook queues (a study's next members) can be claimed next.
    """
    for hook in hooks:
        try:
            hook(store)
        except Exception:  # someone else's bookkeeping must never stop the worker
            traceback.print_exc()


def _threads() -> int:
    """Torch threads for this worker (MTL_WORKER_THREADS, else the runner's rule); a bad setting is logged."""
    try:
        return threads_per_worker()
    except ValueError as error:
        os.environ.pop("MTL_WORKER_THREADS", None)
        threads = threads_per_worker()
        _log(f"{error} Using {threads}.")
        return threads


def _warm_up() -> None:
    """Pay torch's one-off lazy imports now, so that a person's first run starts at once.

    Creating the first optimizer imports torch._dynamo, which takes seconds.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _log(sentence: str) -> None:
    """One line in the worker's log file (its stderr), at once."""
    print(f"mtl worker: {sentence}", file=sys.stderr, flush=True)


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
        # The runs being trained now (several when packed), each with this worker's claim on it;
        # replaced, never changed in place, so the two threads need no lock.
        self.runs: dict[str, str | None] = {}
        self._stopped = threading.Event()
        self._said = ""  # the last refusal logged, so that it is logged once

    def run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_EVERY):
            self.beat_once()

    def beat_once(self) -> None:
        """One beat; runs whose claim was taken away while we were silent are beaten for no more.

        (Their callbacks meet the same refusal at their next write and stop training.)
        """
        runs = self.runs
        try:
            lost = self.store.heartbeat(self.worker, runs)
        except StoreError as error:  # e.g. a read-only store: say it once, not every beat
            if str(error) != self._said:
                _log(f"Heartbeat refused: {error}")
                self._said = str(error)
            return
        except Exception:  # a busy database now and then is no reason to stop beating
            traceback.print_exc()
            return
        if lost and self.runs is runs:
            self.runs = {run_id: claim for run_id, claim in runs.items() if run_id not in lost}

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=5)
