"""SteeringCallback: a worker's training run takes the changes people ask of it, between two steps.

Installed by the worker next to each run's StoreCallback. Before every step
(``on_step_begin``) it looks, at most every POLL_EVERY seconds, for new rows
in the run's ``steering`` table (mtlcore/runs/steering.py: one indexed read,
well under a millisecond), applies them through the run's capabilities, never
by asking which method or architecture it holds:

    loss.weights.<task>   TrainingRun.set_task_weights -> Weighting.set_task_weights
                          (only methods that are ``steerable_weights``)
    optim.lr              TrainingRun.set_learning_rate (the optimiser's param_groups)
    pause / resume        the worker holds the run here, between two steps,
                          polling for resume; its heartbeat thread keeps beating,
                          so the run is not taken for dead

and writes back the step from which each acts. At the end the run's summary
gets the whole history under ``"steering"``, so Compare and export show what
was really trained.

A packed member (``packed=N``) shares one optimiser and one step loop with
the others: its loss weights can change (the packed objective reads each
member's weights every step), its learning rate and pause cannot.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..engine import Callback, FitResult, TrainingRun
from . import steering
from .database import writing

POLL_EVERY = 0.1  # seconds between reads of the steering table (a step of a small model is ~5 ms)
HOLD_POLL = 0.1  # seconds between looks while paused


class SteeringCallback(Callback):
    """Applies a running run's steering requests from its next step; holds it while paused.

    ``stopping``: asked while paused, so that a cancel, a shutdown or a lost
    claim ends the hold at once (the worker passes its StoreCallback's
    ``should_stop``). ``before_hold``: called before holding (the worker
    passes the StoreCallback's ``flush``, so the last points are shown).
    ``claim``: the worker's claim, for the run's message while paused.
    ``poll_every``: seconds between reads of the table (0: before every step).
    """

    def __init__(self, store, run_id: str, claim: str | None = None, packed: int = 0,
                 stopping: Callable[[], bool] | None = None, before_hold: Callable[[], None] | None = None,
                 shutdown: threading.Event | None = None, poll_every: float = POLL_EVERY):
        self.store = store
        self.poll_every = poll_every  # 0: look before every step (tests)
        self.run_id = run_id
        self.claim = claim
        self.packed = packed
        self.stopping = stopping or (lambda: False)
        self.before_hold = before_hold or (lambda: None)
        self.shutdown = shutdown or threading.Event()
        self.last_seq = 0
        self._last_poll = 0.0
        self.paused = False

    def on_fit_start(self, run: TrainingRun) -> None:
        if self.packed > 1:  # the page then says what cannot be steered, before anyone tries
            steering.record(self.store, self.run_id, steering.PACKED, float(self.packed))

    def on_step_begin(self, run: TrainingRun) -> None:
        now = time.monotonic()
        if now - self._last_poll < self.poll_every:
            return
        self._last_poll = now
        self.apply_pending(run)
        if self.paused:
            self.hold(run)

    def apply_pending(self, run: TrainingRun) -> None:
        """Take every new request: apply it, or note why not; record the step it acts from."""
        requests = steering.pending(self.store, self.run_id, self.last_seq)
        if not requests:
            return
        weights: dict[str, float] = {}
        notes: dict[int, str] = {}
        for request in requests:
            note = self._apply(run, request, weights)
            if note:
                notes[request.seq] = note
        if weights:
            try:
                run.set_task_weights(weights)
            except ValueError as error:
                notes.update({r.seq: str(error) for r in requests if r.key.startswith(steering.WEIGHT_PREFIX)})
        steering.mark_applied(self.store, self.run_id, [r.seq for r in requests], run.step, notes)
        self.last_seq = requests[-1].seq

    def _apply(self, run: TrainingRun, request: steering.SteeringEvent, weights: dict[str, float]) -> str:
        """Apply one request (weights are gathered, then set together); return why it was refused, or ""."""
        key = request.key
        if key.startswith(steering.WEIGHT_PREFIX):
            weights[key[len(steering.WEIGHT_PREFIX):]] = float(request.value)
            return ""
        if key in (steering.LR, steering.PAUSE, steering.RESUME) and self.packed > 1:
            return steering.packed_refusal(self.packed)
        if key == steering.LR:
            run.set_learning_rate(float(request.value))
        elif key in (steering.PAUSE, steering.RESUME):
            self.paused = key == steering.PAUSE
        return ""

    def hold(self, run: TrainingRun) -> None:
        """Wait here, between two steps, until resumed (or stopped); weights moved meanwhile are taken too."""
        self.before_hold()
        self._say(f"Paused at step {run.step}; resume to continue.")
        while self.paused and not self.shutdown.is_set() and not self.stopping():
            time.sleep(HOLD_POLL)
            self.apply_pending(run)
        self._say("")

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        late = steering.pending(self.store, self.run_id, self.last_seq)
        if late:  # asked after the last step: say so rather than leave them waiting for ever
            steering.mark_applied(self.store, self.run_id, [r.seq for r in late], run.step,
                                  {r.seq: "It arrived after the run's last step." for r in late})
        history = [e.as_dict() for e in steering.events(self.store, self.run_id) if e.step is not None]
        if history:
            result.summary["steering"] = history
            result.summary["final_weights"] = dict(run.weighting.user_weights)
            result.summary["final_lr"] = run.optimizer.param_groups[0]["lr"]

    def _say(self, message: str) -> None:
        """The run's message while paused ("" when resumed), only while this worker still holds the run."""
        with writing(self.store.db_path) as conn:
            if message:
                conn.execute("UPDATE runs SET message = ? WHERE id = ? AND state = 'running' "
                             "AND (? IS NULL OR claim = ?)", (message, self.run_id, self.claim, self.claim))
            else:  # only our own words: a "Stopping..." written by a cancel meanwhile stays
                conn.execute("UPDATE runs SET message = '' WHERE id = ? AND message LIKE 'Paused at step %'",
                             (self.run_id,))


def history_of(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A finished run's steering history, from its summary (empty when it was never steered)."""
    return list((summary or {}).get("steering") or [])
