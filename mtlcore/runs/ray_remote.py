"""What runs on the Ray cluster: the training task and the mailbox it reports to.

The cluster cannot write to the app's SQLite file (it may be on another
machine), so a training task sends everything a local worker would write
into a ``Mailbox`` actor, and the dispatcher on the app's machine empties
that mailbox into the store (see ray_dispatcher.py). The mailbox also
carries the other direction: a cancel flag that the task polls, so that a
cancelled run stops cleanly after its current step and keeps its metrics
and checkpoint, exactly like a local run.

Only imported when Ray is asked for: it imports ``ray`` at the top.
"""
from __future__ import annotations

import time
from typing import Any

import ray
import torch

from ..checkpoint import checkpoint_bytes  # the bytes of the checkpoint file: the format has one owner
from ..config import ExperimentConfig
from ..engine import Callback, FitResult, TrainingRun, fit

FLUSH_EVERY = 0.25  # seconds between sends of buffered step logs (as StoreCallback.FLUSH_EVERY)
CANCEL_CHECK_EVERY = 0.25  # seconds between looks at the cancel flag


@ray.remote(num_cpus=0)  # bookkeeping only: it must not take a CPU slot away from training
class Mailbox:
    """Messages from every running task to the dispatcher, and cancel flags back.

    One mailbox per dispatcher; it lives as long as the dispatcher does, so
    when the dispatcher goes away its tasks notice (their sends fail) and stop.
    Only the latest checkpoint of each run is kept: older ones are never needed.
    """

    def __init__(self):
        self._messages: dict[str, list[tuple]] = {}
        self._checkpoints: dict[str, bytes] = {}
        self._stop: set[str] = set()

    def send(self, run_id: str, messages: list[tuple], checkpoint: bytes | None = None) -> None:
        self._messages.setdefault(run_id, []).extend(messages)
        if checkpoint is not None:
            self._checkpoints[run_id] = checkpoint

    def take(self, run_ids: list[str]) -> dict[str, tuple[list[tuple], bytes | None]]:
        """Everything received for ``run_ids`` since the last take: {run: (messages, latest checkpoint)}."""
        return {r: (self._messages.pop(r, []), self._checkpoints.pop(r, None)) for r in run_ids}

    def request_stop(self, run_id: str) -> None:
        self._stop.add(run_id)

    def stop_requested(self, run_id: str) -> bool:
        return run_id in self._stop

    def forget(self, run_id: str) -> None:
        self._stop.discard(run_id)


class MailboxCallback(Callback):
    """StoreCallback's twin for the cluster: sends to the mailbox what StoreCallback writes to SQLite.

    Messages are ("device", text), ("steps", [logs], progress) and ("epoch", logs);
    checkpoints travel as the bytes of ``torch.save``.
    """

    def __init__(self, mailbox, run_id: str):
        self.mailbox, self.run_id = mailbox, run_id
        self._pending: list[dict[str, Any]] = []
        self._progress: float | None = None
        self._last_flush = self._last_check = 0.0
        self._stopped = False

    def on_fit_start(self, run: TrainingRun) -> None:
        self._send([("device", str(run.device))], wait=True)

    def on_step_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self._pending.append({**logs, "t": time.time()})
        self._progress = logs.get("progress", self._progress)
        if time.monotonic() - self._last_flush >= FLUSH_EVERY:
            self._send(self._take_steps())

    def on_epoch_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self._send(self._take_steps() + [("epoch", {**logs, "t": time.time()})], checkpoint_bytes(run))

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        # Waiting for this last send means every earlier one has arrived too (an actor runs
        # one caller's calls in order), so the dispatcher has it all when the task returns.
        # A diverged model keeps its last good checkpoint, as with local workers.
        final = checkpoint_bytes(run) if result.status != "diverged" else None
        self._send(self._take_steps(), final, wait=True)

    def should_stop(self) -> bool:
        # One round trip to the mailbox per look: a few times a second, not every step.
        now = time.monotonic()
        if not self._stopped and now - self._last_check >= CANCEL_CHECK_EVERY:
            self._last_check = now
            self._stopped = ray.get(self.mailbox.stop_requested.remote(self.run_id))
        return self._stopped

    def _take_steps(self) -> list[tuple]:
        steps, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        return [("steps", steps, self._progress)] if steps else []

    def _send(self, messages: list[tuple], checkpoint: bytes | None = None, wait: bool = False) -> None:
        if messages or checkpoint is not None:
            ref = self.mailbox.send.remote(self.run_id, messages, checkpoint)
            if wait:
                ray.get(ref)


@ray.remote(max_retries=0)  # a run is not retried behind the person's back: a lost task is "interrupted"
def train_on_cluster(run_id: str, config_json: str, mailbox) -> dict[str, Any]:
    """Train one run on a cluster node; return how it ended ({"state", "message", "summary"}).

    A failing run is reported as ``failed`` with its error, never raised:
    an exception out of this task means Ray lost it (killed, node gone).
    """
    import traceback

    # Ray gives the task its CPU share; more torch threads than that would fight the neighbours.
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    config = ExperimentConfig.from_json(config_json)
    # With num_gpus=1 Ray shows the task exactly one GPU, so "cuda:3" on the app's side means "cuda" here.
    device = "cuda" if config.device.startswith("cuda") else None
    try:
        result = fit(config, callbacks=[MailboxCallback(mailbox, run_id)], device=device)
    except Exception as error:
        traceback.print_exc()  # lands in the Ray worker's log
        lines = str(error).strip().splitlines()
        return {"state": "failed", "message": lines[0] if lines else type(error).__name__, "summary": None}
    return {"state": result.status, "message": result.message, "summary": result.summary}
