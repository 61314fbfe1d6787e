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

from typing import Any

import ray
import torch

from ..checkpoint import checkpoint_bytes  # the bytes of the checkpoint file: the format has one owner
from ..config import ExperimentConfig
from ..engine import TrainingRun, fit
from .callback import StreamingCallback  # the same streaming callback as local runs, over a mailbox


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


class MailboxSink:
    """The streaming callback's sink on the cluster: what ``StoreSink`` writes to SQLite, sent to the mailbox.

    Messages are ("device", text), ("steps", [logs], progress) and ("epoch", logs);
    checkpoints travel as the bytes of the checkpoint file (``mtlcore.checkpoint``).
    Sends do not wait, except the first (the device) and the last (``end``).
    Nothing here is fenced: the dispatcher writes under its claim (ray_dispatcher.py).
    """

    lost = None  # a mailbox never refuses; the dispatcher's writes into the store are fenced instead

    def __init__(self, mailbox, run_id: str):
        self.mailbox, self.run_id = mailbox, run_id
        self._last_send = None

    def begin(self, device: str) -> None:
        self._send([("device", device)])
        ray.get(self._last_send)

    def steps(self, steps: list[dict[str, Any]], progress: float | None) -> None:
        self._send([("steps", steps, progress)])

    def epoch(self, logs: dict[str, Any]) -> None:
        self._send([("epoch", logs)])

    def checkpoint(self, run: TrainingRun) -> None:
        self._send([], checkpoint_bytes(run))

    def stop_requested(self) -> bool:
        # One round trip to the mailbox per look (the callback looks a few times a second, not every step).
        return ray.get(self.mailbox.stop_requested.remote(self.run_id))

    def cancelled(self, message: str) -> None:
        """Not asked for on the cluster (the dispatcher records a cancelled run's end when its task returns)."""

    def end(self) -> None:
        # Waiting for this last send means every earlier one has arrived too (an actor runs
        # one caller's calls in order), so the dispatcher has it all when the task returns.
        if self._last_send is not None:
            ray.get(self._last_send)

    def _send(self, messages: list[tuple], checkpoint: bytes | None = None) -> None:
        self._last_send = self.mailbox.send.remote(self.run_id, messages, checkpoint)


class MailboxCallback(StreamingCallback):
    """The streaming callback of a task on the cluster: ``StreamingCallback`` over a ``MailboxSink``."""

    def __init__(self, mailbox, run_id: str):
        super().__init__(MailboxSink(mailbox, run_id))


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
