"""The Ray dispatcher: the second executor, for runs that should train on a Ray cluster.

    python -m mtlcore worker --ray auto          # or ray://host:10001, or local
    MTL_RAY_ADDRESS=auto streamlit run app.py    # the runner starts the dispatcher itself

It stands where a local worker would stand: a process on the app's machine,
registered in the store as a worker (device "ray"). Instead of training, it
claims queued runs and submits each as a Ray task (ray_remote.train_on_cluster),
as many at once as the cluster has CPUs, so a study's members train side by
side. The store stays on the app's machine: the tasks send their metrics and
checkpoints to a Mailbox actor, and this loop writes them to SQLite, so
pages cannot tell a Ray run from a local one.

How runs end:
- the task returns: finished, cancelled, diverged or failed, as locally;
- cancelling in the app sets the run's flag in the mailbox; the task polls it
  and stops after its current step, keeping its metrics (no ray.cancel, so
  the last checkpoint is written like a local cancel);
- the task is killed (ray.cancel(force=True), its node dies): interrupted;
- the connection to the cluster is lost: every run it held is interrupted,
  and the dispatcher exits (the runner starts a fresh one on the next page load);
- the dispatcher is stopped (SIGTERM): it kills its tasks and marks them interrupted;
- the dispatcher was paused past the heartbeat timeout and its runs were marked
  interrupted meanwhile: each write it makes for a run names the claim it was
  given with the run, the store refuses the writes of a claim taken away
  (ClaimLost), and the dispatcher stops that run's task and leaves it interrupted.

``ray`` is imported only in this module and ray_remote.py, and only when
asked for: local workers never need it.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .checkpoints import write_checkpoint_bytes_while_held
from .errors import ClaimLost
from .processes import worker_name
from .record import FAILED, INTERRUPTED, RunRecord
from .store import HEARTBEAT_EVERY, RunStore
from .worker import POLL_EVERY, AfterRun, _stop_on_signals, call_hooks

RAY_DEVICE = "ray"  # how the dispatcher's worker row names its device
SLOTS_EVERY = 5.0  # seconds between looks at the cluster's size (it may grow or shrink)
TAKE_TIMEOUT = 20.0  # seconds to wait for the mailbox before calling the cluster lost (< STALE_AFTER)

LOST_MESSAGE = ("The connection to the Ray cluster ({address}) was lost while it was training; "
                "the metrics logged so far are kept.")
KILLED_MESSAGE = ("Its Ray task stopped before the run ended (cancelled on the cluster, its worker killed "
                  "or its node lost); the metrics logged so far are kept.")
SHUTDOWN_MESSAGE = "The Ray dispatcher was shut down during training; the metrics logged so far are kept."


def connect(address: str) -> bool:
    """Connect this process to Ray at ``address`` unless it already is; return True if we connected.

    ``local`` starts a private Ray instance with this machine's CPUs; ``auto``
    joins a cluster started with ``ray start --head`` on this machine;
    ``ray://host:10001`` reaches a remote cluster through Ray Client. For a
    cluster, mtlcore is shipped with the job (py_modules), so nodes need only
    torch and ray installed.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the app never phones home on its own
    import ray

    if ray.is_initialized():  # e.g. a test that started Ray itself
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if address == "local":
        ray.init(address="local", include_dashboard=False, **options)
    else:
        package = str(Path(__file__).resolve().parents[1])  # the mtlcore folder
        ray.init(address=address, runtime_env={"py_modules": [package]}, **options)
    return True


def run_ray_dispatcher(home: Path | str | None, address: str, idle_exit: float | None = None,
                       after_each_run: Sequence[AfterRun] = ()) -> int:
    """Connect to Ray at ``address`` and dispatch queued runs until stopped; return how many ended.

    ``after_each_run`` as for ``run_worker``: called with the store whenever runs have ended.
    """
    import ray

    store = RunStore(home)
    shutdown = threading.Event()
    connected = connect(address)
    # After ray.init, which sets SIGTERM handlers of its own: ours must win, to stop cleanly.
    previous_handlers = _stop_on_signals(shutdown)
    try:
        return RayDispatcher(store, address, after_each_run=after_each_run).run(shutdown, idle_exit)
    finally:
        if connected:
            ray.shutdown()
        import signal

        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


@dataclass
class HeldRun:
    """A run this dispatcher has claimed and submitted: its Ray task and whether a stop was asked."""

    record: RunRecord
    task: Any  # ray.ObjectRef of train_on_cluster
    stop_sent: bool = False


class RayDispatcher:
    """Claims queued runs from ``store``, trains them on the connected Ray cluster, records what they send.

    ``held`` maps run id to HeldRun for the runs on the cluster now (tests
    reach into it to kill a task).
    """

    def __init__(self, store: RunStore, address: str = "", name: str | None = None,
                 after_each_run: Sequence[AfterRun] = ()):
        from .ray_remote import Mailbox

        self.store, self.address = store, address
        self.after_each_run = tuple(after_each_run)
        self.name = name or worker_name()
        self.mailbox = Mailbox.remote()
        self.held: dict[str, HeldRun] = {}
        self._slots, self._slots_at, self._beat_at = 1, -SLOTS_EVERY, 0.0

    def run(self, shutdown: threading.Event, idle_exit: float | None = None) -> int:
        """The loop: claim, collect, beat; return how many runs ended while we held them."""
        import ray

        ended, idle_since = 0, time.monotonic()
        self.store.register_worker(self.name, os.getpid(), RAY_DEVICE)
        try:
            while not shutdown.is_set():
                try:
                    self._claim()
                    ended += self._collect()
                except (ConnectionError, ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError,
                        ray.exceptions.RaySystemError):
                    self._end_all(LOST_MESSAGE.format(address=self.address or "this process's Ray"), kill=False)
                    break  # nothing more can be dispatched; a fresh dispatcher will reconnect
                self._beat()
                if self.held:
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    break
                shutdown.wait(POLL_EVERY)
            else:
                self._end_all(SHUTDOWN_MESSAGE, kill=True)
        finally:
            self.store.remove_worker(self.name)
        return ended

    # ----- one pass of the loop ---------------------------------------------------------
    def _claim(self) -> None:
        """Claim queued runs until the cluster's CPUs are all spoken for, and submit each as a task."""
        from .ray_remote import train_on_cluster

        while len(self.held) < self.slots():
            record = self.store.claim_next(self.name)
            if record is None:
                return
            gpus = self._gpus_for(record)
            if gpus is None:
                self.store.finish_run(record.id, FAILED, "It asks for a GPU, and the Ray cluster has none; "
                                      "choose device auto or cpu.", claim=record.claim)
                continue
            task = train_on_cluster.options(num_gpus=gpus).remote(record.id, record.config.to_json(), self.mailbox)
            self.held[record.id] = HeldRun(record, task)

    def _collect(self) -> int:
        """Pass cancel requests on, write what the tasks sent, record the runs that ended; return how many."""
        import ray

        for run_id, held in list(self.held.items()):
            try:
                stop = not held.stop_sent and self.store.cancel_requested(run_id, held.record.claim)
            except ClaimLost as error:
                self._drop(run_id, error)
                continue
            if stop:
                self.mailbox.request_stop.remote(run_id)
                held.stop_sent = True
        if not self.held:
            return 0
        tasks = [held.task for held in self.held.values()]
        # Which tasks ended *before* we read the mailbox: their last messages are in it already.
        done, _ = ray.wait(tasks, num_returns=len(tasks), timeout=0)
        inbox = ray.get(self.mailbox.take.remote(list(self.held)), timeout=TAKE_TIMEOUT)
        for run_id, (messages, checkpoint) in inbox.items():
            try:
                self._write(run_id, messages, checkpoint)
            except ClaimLost as error:
                self._drop(run_id, error)
        done = set(done)  # ObjectRefs compare by the object they name
        ended = [run_id for run_id, held in self.held.items() if held.task in done]
        for run_id in ended:
            self._finish(run_id, self.held.pop(run_id))
        if ended:
            call_hooks(self.after_each_run, self.store)
        return len(ended)

    def _write(self, run_id: str, messages: list[tuple], checkpoint: bytes | None) -> None:
        """Store what a task sent, as StoreCallback would have, under our claim (ClaimLost if it was taken)."""
        if run_id not in self.held:
            return  # dropped meanwhile
        claim = self.held[run_id].record.claim
        for message in messages:
            kind = message[0]
            if kind == "device":
                self.store.set_device(run_id, message[1], claim=claim)
                self.store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
            elif kind == "steps":
                self.store.append_steps(run_id, message[1], message[2], claim=claim)
            elif kind == "epoch":
                self.store.append_epoch(run_id, message[1], claim=claim)
        if checkpoint is not None:
            # atomic and fenced, like a local worker's: a reader never sees half a file
            write_checkpoint_bytes_while_held(checkpoint, self.store.checkpoint_path(run_id),
                                              lambda: self.store.check_claim(run_id, claim))

    def _drop(self, run_id: str, error: ClaimLost) -> None:
        """A held run was taken away from us (see ClaimLost): stop its task, leave the run as the store says."""
        import ray

        held = self.held.pop(run_id, None)
        print(f"mtl ray dispatcher: {error}", file=sys.stderr, flush=True)
        if held is None:
            return
        try:
            self.mailbox.request_stop.remote(run_id)
            ray.cancel(held.task, force=True)
        except Exception:  # the cluster may be gone; the run is no longer ours either way
            pass

    def _finish(self, run_id: str, held: HeldRun) -> None:
        import ray

        try:
            outcome = ray.get(held.task, timeout=TAKE_TIMEOUT)
        except (ray.exceptions.RayError, ConnectionError):  # cancelled, worker killed, node died
            ending = (INTERRUPTED, KILLED_MESSAGE, None)
        else:
            ending = (outcome["state"], outcome["message"], outcome["summary"])
        try:
            self.store.finish_run(run_id, *ending, claim=held.record.claim)
        except ClaimLost as error:
            print(f"mtl ray dispatcher: {error}", file=sys.stderr, flush=True)
        self.mailbox.forget.remote(run_id)

    def _end_all(self, message: str, kill: bool) -> None:
        """Mark every held run interrupted (and, if we still can, kill its task)."""
        import ray

        for run_id, held in list(self.held.items()):
            if kill:
                try:
                    ray.cancel(held.task, force=True)
                except Exception:  # the cluster may be gone already; the run is marked either way
                    pass
            try:
                self.store.finish_run(run_id, INTERRUPTED, message, claim=held.record.claim)
            except ClaimLost:
                pass  # already ended by recovery: interrupted either way
            del self.held[run_id]

    # ----- the cluster and the store's bookkeeping --------------------------------------
    def slots(self) -> int:
        """How many runs may be on the cluster at once: its CPU count (looked up every few seconds)."""
        import ray

        if time.monotonic() - self._slots_at >= SLOTS_EVERY:
            self._slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self._slots_at = time.monotonic()
        return self._slots

    def _gpus_for(self, record: RunRecord) -> int | None:
        """1 for a run that asks for cuda (or auto, on a cluster with GPUs), else 0; None if impossible."""
        import ray

        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        device = record.config.device
        if device.startswith("cuda"):
            return 1 if has_gpus else None
        return 1 if device == "auto" and has_gpus else 0

    def _beat(self) -> None:
        """Keep our worker row and every held run's heartbeat fresh, so recovery leaves them alone."""
        if time.monotonic() - self._beat_at < HEARTBEAT_EVERY:
            return
        self._beat_at = time.monotonic()
        claims = {run_id: held.record.claim for run_id, held in self.held.items()}
        for run_id in self.store.heartbeat(self.name, claims):  # taken away while we were silent
            self._drop(run_id, ClaimLost(f"Run {run_id} was marked interrupted while this dispatcher was silent "
                                         "(paused or asleep), so its Ray task is stopped and the run stays so."))
