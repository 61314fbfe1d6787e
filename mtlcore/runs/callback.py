"""The streaming callback: what a background training run sends as it goes, to a sink.

One callback streams a run's device, step logs, epoch logs and checkpoints,
and asks whether the run should stop; *where* they go is its sink's job:

    StoreSink     (here) writes into the run store's SQLite file, under the
                  worker's claim on the run: a local worker
    MailboxSink   (ray_remote.py) sends to the Ray dispatcher's mailbox actor,
                  which writes them into the store on the app's machine

so a run trained on a cluster streams exactly as a local one does.

Writes are batched: a tiny model can log hundreds of steps a second, and one
transaction per step would spend more time in SQLite than in training. Step
logs are flushed at most every FLUSH_EVERY seconds, so a page polling the
store sees a new point well within a second. The stop flag is read at most
every CANCEL_CHECK_EVERY seconds for the same reason.

Every store write names the worker's claim on the run (fencing): when the
store refuses one (ClaimLost: the run was marked interrupted while this
worker was paused, or it was deleted), the sink writes nothing more, says
why in one line of the worker's log, and the callback asks training to stop
at once.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Protocol

from ..engine import Callback, FitResult, TrainingRun
from .checkpoints import save_checkpoint_while_held
from .errors import ClaimLost
from .record import CANCELLED
from .store import RunStore

FLUSH_EVERY = 0.25  # seconds between writes of buffered step logs
CANCEL_CHECK_EVERY = 0.25  # seconds between reads of the cancel flag (and of the claim)


class Sink(Protocol):
    """Where a streaming run's news goes. ``lost``: set once the sink refuses to take more (ClaimLost)."""

    lost: ClaimLost | None

    def begin(self, device: str) -> None: ...
    def steps(self, steps: list[dict[str, Any]], progress: float | None) -> None: ...
    def epoch(self, logs: dict[str, Any]) -> None: ...
    def checkpoint(self, run: TrainingRun) -> None: ...
    def stop_requested(self) -> bool: ...
    def cancelled(self, message: str) -> None: ...
    def end(self) -> None: ...


class StreamingCallback(Callback):
    """Streams one run's metrics, progress and checkpoints into ``sink``.

    ``should_stop`` turns True when someone asks the run to stop (the sink
    says so), or when ``shutdown`` (an Event the worker sets on SIGTERM) is
    set, or when the sink refused a write (``lost``).

    ``end_on_cancel``: record the run as ``cancelled`` as soon as the cancel
    is seen, not when training returns. A member of a packed group stops at
    once, but its group trains on and returns only when all have ended; its
    owner should not wait for that (nor have it count against their queue
    cap meanwhile). The worker adds the run's summary when the group ends.
    """

    def __init__(self, sink: Sink, shutdown: threading.Event | None = None, end_on_cancel: bool = False):
        self.sink = sink
        self.shutdown = shutdown or threading.Event()
        self.end_on_cancel = end_on_cancel
        self._run: TrainingRun | None = None
        self._pending: list[dict[str, Any]] = []
        self._progress: float | None = None
        self._last_flush = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False

    @property
    def lost(self) -> ClaimLost | None:
        """The refusal that stopped this run's writes (its claim was taken away), or None."""
        return self.sink.lost

    @property
    def cancelled(self) -> bool:
        """Whether someone cancelled this run (as opposed to the worker shutting down)."""
        return self._cancelled

    def on_fit_start(self, run: TrainingRun) -> None:
        self._run = run
        self.sink.begin(str(run.device))

    def on_step_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        if self.lost is not None:
            return
        self._pending.append({**logs, "t": time.time()})
        self._progress = logs.get("progress", self._progress)
        if time.monotonic() - self._last_flush >= FLUSH_EVERY:
            self.flush()

    def on_epoch_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self.flush()
        self.sink.epoch({**logs, "t": time.time()})
        self.sink.checkpoint(run)

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        self.flush()
        # The final checkpoint holds the best epoch's weights when early stopping kept one;
        # a diverged model is not worth predicting with, so its last good checkpoint stays.
        if result.status != "diverged":
            self.sink.checkpoint(run)
        self.sink.end()

    def should_stop(self) -> bool:
        if self.shutdown.is_set() or self.lost is not None:
            return True
        # fit asks every step; asking the sink that often would slow training down.
        # For the store, the same read checks the claim, so a worker that wakes from a pause stops within it.
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_EVERY:
            self._last_cancel_check = now
            self._cancelled = bool(self.sink.stop_requested())
            if self._cancelled and self.end_on_cancel:
                self._record_cancel()
        return self._cancelled or self.lost is not None

    def _record_cancel(self) -> None:
        """End the run now, with the message fit gives a cancelled run."""
        self.flush()  # its last steps belong before its end: pages cache an ended run's metrics
        run = self._run
        self.sink.cancelled(f"Cancelled at step {run.step} (epoch {run.epoch})." if run is not None else "Cancelled.")

    def flush(self) -> None:
        """Send buffered step logs and the latest progress."""
        if self._pending:
            pending, self._pending = self._pending, []
            if self.lost is None:
                self.sink.steps(pending, self._progress)
        self._last_flush = time.monotonic()


class StoreSink:
    """A run's news written into ``store`` under the worker's ``claim`` on the run (None: unfenced).

    A write the store refuses (ClaimLost) is kept in ``lost``, said in one
    line of the worker's log, and every later write is skipped.
    """

    def __init__(self, store: RunStore, run_id: str, claim: str | None = None):
        self.store, self.run_id, self.claim = store, run_id, claim
        self.lost: ClaimLost | None = None

    def begin(self, device: str) -> None:
        self._fenced(self.store.set_device, self.run_id, device, claim=self.claim)
        self.store.run_dir(self.run_id).mkdir(parents=True, exist_ok=True)

    def steps(self, steps: list[dict[str, Any]], progress: float | None) -> None:
        self._fenced(self.store.append_steps, self.run_id, steps, progress, claim=self.claim)

    def epoch(self, logs: dict[str, Any]) -> None:
        self._fenced(self.store.append_epoch, self.run_id, logs, claim=self.claim)

    def checkpoint(self, run: TrainingRun) -> None:
        # Replaces the last one only while the claim holds (checkpoints.save_checkpoint_while_held).
        self._fenced(save_checkpoint_while_held, run.checkpoint(), self.store.checkpoint_path(self.run_id),
                     lambda: self.store.check_claim(self.run_id, self.claim))

    def stop_requested(self) -> bool:
        return bool(self._fenced(self.store.cancel_requested, self.run_id, self.claim))

    def cancelled(self, message: str) -> None:
        self._fenced(self.store.finish_run, self.run_id, CANCELLED, message, claim=self.claim)

    def end(self) -> None:
        """Nothing to wait for: every write above has committed when it returned."""

    def _fenced(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Do one store write unless the claim is lost; a refused write marks it lost (and returns None)."""
        if self.lost is not None:
            return None
        try:
            return write(*args, **kwargs)
        except ClaimLost as error:
            self.lost = error
            print(f"mtl worker: {error}", file=sys.stderr, flush=True)  # the one line in the worker's log
            return None


class StoreCallback(StreamingCallback):
    """The streaming callback of a local worker: ``StreamingCallback`` over a ``StoreSink``.

    ``claim``: the token the worker was given with the run (RunRecord.claim);
    None writes unfenced. ``lost`` holds the ClaimLost once a write was refused.
    """

    def __init__(self, store: RunStore, run_id: str, shutdown: threading.Event | None = None,
                 end_on_cancel: bool = False, claim: str | None = None):
        super().__init__(StoreSink(store, run_id, claim), shutdown, end_on_cancel)
        self.store, self.run_id, self.claim = store, run_id, claim
