"""StoreCallback: what a worker's training run writes to the store as it goes.

Writes are batched: a tiny model can log hundreds of steps a second, and one
transaction per step would spend more time in SQLite than in training. Step
logs are flushed at most every FLUSH_EVERY seconds, so a page polling the
store sees a new point well within a second.

Every write names the worker's claim on the run (fencing): when the store
refuses one (ClaimLost: the run was marked interrupted while this worker
was paused, or it was deleted), the callback writes nothing more, says why
in one line of the worker's log, and asks training to stop at once.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

from ..engine import Callback, FitResult, TrainingRun
from .checkpoints import save_checkpoint_while_held
from .errors import ClaimLost
from .record import CANCELLED
from .store import RunStore

FLUSH_EVERY = 0.25  # seconds between writes of buffered step logs
CANCEL_CHECK_EVERY = 0.25  # seconds between reads of the cancel flag (and of the claim)


class StoreCallback(Callback):
    """Streams one run's metrics, progress and checkpoints into ``store``.

    ``should_stop`` turns True when someone cancels the run in the store, or
    when ``shutdown`` (an Event the worker sets on SIGTERM) is set, or when
    the worker's claim on the run was taken away.

    ``end_on_cancel``: record the run as ``cancelled`` as soon as the cancel
    is seen, not when training returns. A member of a packed group stops at
    once, but its group trains on and returns only when all have ended; its
    owner should not wait for that (nor have it count against their queue
    cap meanwhile). The worker adds the run's summary when the group ends.

    ``claim``: the token the worker was given with the run (RunRecord.claim);
    None writes unfenced. ``lost`` holds the ClaimLost once a write was refused.
    """

    def __init__(self, store: RunStore, run_id: str, shutdown: threading.Event | None = None,
                 end_on_cancel: bool = False, claim: str | None = None):
        self.store = store
        self.run_id = run_id
        self.claim = claim
        self.lost: ClaimLost | None = None
        self.shutdown = shutdown or threading.Event()
        self.end_on_cancel = end_on_cancel
        self._run: TrainingRun | None = None
        self._pending: list[dict[str, Any]] = []
        self._progress: float | None = None
        self._last_flush = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether someone cancelled this run (as opposed to the worker shutting down)."""
        return self._cancelled

    def on_fit_start(self, run: TrainingRun) -> None:
        self._run = run
        self._fenced(self.store.set_device, self.run_id, str(run.device), claim=self.claim)
        self.store.run_dir(self.run_id).mkdir(parents=True, exist_ok=True)

    def on_step_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        if self.lost is not None:
            return
        self._pending.append({**logs, "t": time.time()})
        self._progress = logs.get("progress", self._progress)
        if time.monotonic() - self._last_flush >= FLUSH_EVERY:
            self.flush()

    def on_epoch_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self.flush()
        self._fenced(self.store.append_epoch, self.run_id, {**logs, "t": time.time()}, claim=self.claim)
        self._save_checkpoint(run)

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        self.flush()
        # The final checkpoint holds the best epoch's weights when early stopping kept one;
        # a diverged model is not worth predicting with, so its last good checkpoint stays.
        if result.status != "diverged":
            self._save_checkpoint(run)

    def should_stop(self) -> bool:
        if self.shutdown.is_set() or self.lost is not None:
            return True
        # fit asks every step; reading the database that often would slow training down.
        # The same read checks the claim, so a worker that wakes from a pause stops within it.
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_EVERY:
            self._last_cancel_check = now
            self._cancelled = bool(self._fenced(self.store.cancel_requested, self.run_id, self.claim))
            if self._cancelled and self.end_on_cancel:
                self._record_cancel()
        return self._cancelled or self.lost is not None

    def _record_cancel(self) -> None:
        """End the run in the store now, with the message fit gives a cancelled run."""
        self.flush()  # its last steps belong before its end: pages cache an ended run's metrics
        run = self._run
        message = f"Cancelled at step {run.step} (epoch {run.epoch})." if run is not None else "Cancelled."
        self._fenced(self.store.finish_run, self.run_id, CANCELLED, message, claim=self.claim)

    def flush(self) -> None:
        """Write buffered step logs and the latest progress."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._fenced(self.store.append_steps, self.run_id, pending, self._progress, claim=self.claim)
        self._last_flush = time.monotonic()

    def _save_checkpoint(self, run: TrainingRun) -> None:
        if self.lost is None:
            self._fenced(save_checkpoint_while_held, run.checkpoint(), self.store.checkpoint_path(self.run_id),
                         lambda: self.store.check_claim(self.run_id, self.claim))

    def _fenced(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Do one store write unless the claim is lost; a refused write marks it lost (and returns None)."""
        if self.lost is not None:
            return None
        try:
            return write(*args, **kwargs)
        except ClaimLost as error:
            self.lost = error
            self._pending = []
            print(f"mtl worker: {error}", file=sys.stderr, flush=True)  # the one line in the worker's log
            return None
