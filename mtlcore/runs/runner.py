"""The runner: what the app calls to queue runs, stop them and keep workers going.

    runner = Runner(RunStore())            # st.cache_resource: one per app process
    runner.ensure_workers()                # on every page load: cheap and idempotent
    alice = Owner.from_key("alice", key)   # mtlcore.owners: a browser's name and private key
    run_id = runner.submit(config, label="wider trunk", owner=alice)
    runner.cancel(run_id, by=alice)        # NotOwnerError for anyone else but the teacher
    runner.delete(run_id, by=alice)        # once it has ended

Training happens in separate worker processes, never in the page's thread,
so pages stay responsive. With ``ray_address`` (or MTL_RAY_ADDRESS) the one
"worker" is a Ray dispatcher instead, which trains runs on a Ray cluster
(ray_dispatcher.py); without it Ray is never imported.

Workers are started detached (their own session),
so a Streamlit rerun or restart does not kill them, and a restarted app
finds them through the store instead of starting more.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from ..config import ExperimentConfig
from ..validation import validate
from ..owners import Owner
# Packing is decided by mtlcore.packing (when a run is queued: the store's insert); the names stay importable here.
from ..packing.grouping import MAX_PACKED_RUNS, PACKING_VARIABLE, first_pack, packing_enabled  # noqa: F401
from .processes import host_name, stop_process
from .store import RunStore

# Where ``python -m mtlcore`` is importable from, for workers started in another folder.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])

# A worker the app started exits after this long without work, so that a
# closed app leaves no process polling the store or holding (GPU) memory;
# the pages' ensure_workers() starts a new one when it is needed again.
IDLE_EXIT_SECONDS = 900


WORKERS_VARIABLE = "MTL_WORKERS"  # how many background workers; unset or "auto": default_worker_count's rule
THREADS_VARIABLE = "MTL_WORKER_THREADS"  # torch threads in each worker; unset: threads_per_worker's rule


# On a CPU, at most this many workers by default: each holds torch and its data in memory
# (a few hundred MB), and beyond a few, threads inside each use big machines' cores as well.
MAX_CPU_WORKERS = 4


def auto_worker_count(cores: int | None = None, gpus: int | None = None) -> int:
    """The rule for how many workers train at once: one per GPU; else one per core, at most MAX_CPU_WORKERS.

    On a CPU, a class's runs are small, and one thread per run uses a core
    better than two threads on one run (2-core machine: 49 % of the matmul
    peak on one thread, 42 % on two; benchmarks/README.md), so on two cores
    two students' runs train side by side instead of one after the other
    (benchmarks/bench_class.py, README "Performance").
    """
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    if gpus:
        return gpus
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_CPU_WORKERS))


def default_worker_count(cores: int | None = None, gpus: int | None = None) -> int:
    """How many background workers a Runner keeps: MTL_WORKERS when set (0 or more), else ``auto_worker_count``.

    A value that is not a whole number raises ValueError in one sentence.
    """
    setting = os.environ.get(WORKERS_VARIABLE, "").strip().lower()
    if not setting or setting == "auto":
        return auto_worker_count(cores, gpus)
    try:
        count = int(setting)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError(f"{WORKERS_VARIABLE} must be a whole number of workers (0 or more) or auto, "
                         f"not {setting!r}.")
    return count


def threads_per_worker(workers: int | None = None, cores: int | None = None) -> int:
    """Torch threads in each worker: MTL_WORKER_THREADS if set, else the cores shared out, one left over.

    One core is left to the web server when there are several (the old rule
    for a single worker was cores - 1), and the rest are shared between the
    ``workers`` (None: default_worker_count()); never fewer than one. A
    setting that is not a whole number raises ValueError in one sentence.
    """
    setting = os.environ.get(THREADS_VARIABLE, "").strip()
    if setting:
        try:
            return max(1, int(setting))
        except ValueError:
            raise ValueError(f"{THREADS_VARIABLE} must be a whole number of threads, not {setting!r}.") from None
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if workers is None:
        try:
            workers = default_worker_count(cores)
        except ValueError:
            workers = auto_worker_count(cores)
    return max(1, (cores - 1) // max(1, workers))


@contextlib.contextmanager
def worker_threads():
    """Torch threads as a worker has them (``threads_per_worker(1)``) while the body trains here; then as before.

    For training in the foreground: a study or a reproduction from the command
    line, or from the Findings page (a thread of the app's server). Torch's
    default is a thread per core; when another program keeps one of those
    cores busy (the app's worker, a second reproduction), every parallel
    operation waits for the thread that has no core. Beside one busy torch
    process on two cores, the relatedness reproduction's stacked training
    took 4.2x as long with two threads as with one; on a quiet machine two
    threads gained 7 % (benchmarks/bench_threads.py).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_worker(workers=1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def workers_text(workers: int | None = None) -> str:
    """One sentence on the worker setting, for doctor: how many, how many threads each, and how to change it."""
    source = f"from {WORKERS_VARIABLE}" if os.environ.get(WORKERS_VARIABLE, "").strip().lower() not in ("", "auto") \
        else f"auto: one per GPU, else one per core up to {MAX_CPU_WORKERS}; set {WORKERS_VARIABLE} to change"
    if workers is None:
        try:
            workers = default_worker_count()
        except ValueError as error:
            return str(error)
    try:
        threads = threads_per_worker(max(1, workers))
    except ValueError as error:
        return str(error)
    packing = "on" if packing_enabled() else f"off ({PACKING_VARIABLE}=0)"
    return (f"{workers} background worker{'s' if workers != 1 else ''} ({source}), {threads} torch "
            f"thread{'s' if threads != 1 else ''} each; the queue is fair between people; packing {packing}")


class Runner:
    """Queues runs in ``store`` and keeps ``max_workers`` worker processes alive.

    ``queue_cap_per_owner`` limits how many runs one person may have *queued
    or running* at once, so that in class one student cannot fill the queue
    ahead of everyone else. One exception, for studies: a *batch* of runs
    that a worker will train together as one packed group (``next_batch``,
    at most MAX_PACKED_RUNS) is queued whole whenever its owner is under the
    cap (``submit_batch``). It then counts by its size, so that person queues
    nothing more until the batch has trained: one person never has more than
    cap - 1 runs and one batch waiting, and a batch trains in about the time
    of a few lone runs.
    """

    def __init__(self, store: RunStore, max_workers: int | None = None, queue_cap_per_owner: int = 3,
                 ray_address: str | None = None):
        self.store = store
        # auto, local or ray://host:10001: train on Ray through one dispatcher; None: local workers.
        self.ray_address = ray_address or os.environ.get("MTL_RAY_ADDRESS") or None
        self.setting_problem = ""  # a sentence when MTL_WORKERS could not be read (shown by doctor)
        if max_workers is None:
            try:
                max_workers = default_worker_count()
            except ValueError as error:
                max_workers = auto_worker_count()
                self.setting_problem = f"{error} Using {max_workers} instead."
        self.max_workers = max_workers
        self.queue_cap_per_owner = queue_cap_per_owner
        self._children: dict[int, subprocess.Popen] = {}  # workers this process started

    def __repr__(self) -> str:
        return f"Runner({self.store!r}, max_workers={self.max_workers}, queue_cap_per_owner={self.queue_cap_per_owner})"

    # ----- runs ----------------------------------------------------------------
    def submit(self, config: ExperimentConfig, label: str = "", owner: Owner | str = "anonymous",
               study_id: str | None = None, lesson: str | None = None) -> str:
        """Queue ``config`` for training; return the new run's id.

        ``owner``: an Owner (a browser's name and key) or a plain name (no key).
        ``lesson``: the id of the lesson it was started from (the class board
        lists it there); LessonClosed, one sentence, when the teacher closed it.
        Raises ConfigError for an impossible config and QueueFullError when
        ``owner`` already has ``queue_cap_per_owner`` runs queued or running.
        """
        validate(config)
        if lesson:
            from .lesson_room import LessonRoom

            LessonRoom(self.store).check_open(lesson)
        run_id = self.store.add_run(config, label, owner, study_id, cap=self.queue_cap_per_owner).id
        if lesson:
            LessonRoom(self.store).tag_run(run_id, lesson)
        return run_id

    def submit_batch(self, configs: Sequence[ExperimentConfig], labels: Sequence[str], owner: Owner | str = "anonymous",
                     study_id: str | None = None) -> list[str]:
        """Queue ``configs`` as one batch (see the class docstring); return the new runs' ids, in order.

        The cap is checked once, before the batch: QueueFullError when
        ``owner`` already has ``queue_cap_per_owner`` runs queued or running.
        """
        for config in configs:
            validate(config)
        return [r.id for r in self.store.add_runs(configs, labels, owner, study_id, cap=self.queue_cap_per_owner)]

    def next_batch(self, configs: Sequence[ExperimentConfig]) -> list[int]:
        """Indices of ``configs`` to queue together with the first: those a worker will pack with it.

        The packing package's rule (``packing.grouping.first_pack``: the same
        pack key, at most one pack). ``[0]`` alone with Ray, whose dispatcher
        sends every run to the cluster as a task of its own, and with packing
        off (MTL_PACKING=0), where every run trains alone anyway.
        """
        if self.ray_address or not packing_enabled():
            return [0]
        return first_pack(configs)

    def has_room(self, owner: Owner | str) -> bool:
        """Whether ``owner`` is under the queue cap, i.e. may queue a run (or a batch) now."""
        cap = self.queue_cap_per_owner
        return cap is None or self.store.active_count(owner) < cap

    def cancel(self, run_id: str, owner: Owner | str | None = None, by: Owner | str | None = None) -> str:
        """Stop a run: a queued one at once, a running one within a second or two.

        Returns what happened, as a sentence. ``by`` (or ``owner``, its older
        name) is who asks: None is the machine's user, who may stop anything;
        anyone else only what they own (``Owner.may_change``; NotOwnerError
        otherwise). Ended runs are left as they are.
        """
        return self.store.cancel_run(run_id, by=by if by is not None else owner)

    def delete(self, run_id: str, by: Owner | str | None = None) -> str:
        """Delete an ended run with its metrics and checkpoint (RunStore.delete_run); return a sentence."""
        return self.store.delete_run(run_id, by=by)

    # ----- workers -------------------------------------------------------------
    def worker_devices(self) -> list[str | None]:
        """The device of each worker slot: its own GPU when there are GPUs, else None (the config decides).

        With Ray, a single slot, "ray": one dispatcher feeds the whole cluster.
        """
        if self.ray_address:
            return ["ray"] if self.max_workers else []
        import torch

        gpus = torch.cuda.device_count()
        return [f"cuda:{slot % gpus}" if gpus else None for slot in range(self.max_workers)]

    def ensure_workers(self) -> int:
        """Start workers until ``max_workers`` are alive; return how many were started.

        Also marks runs whose worker died as ``interrupted``. Cheap enough to
        call on every page load; calls from several sessions at once start
        no extra workers (the store serialises them).
        """
        self._reap_children()
        self.store.recover_orphans()
        return self.store.start_missing_workers(self.worker_devices(), self._start_worker)

    def stop_workers(self, timeout: float = 10.0) -> None:
        """Stop every worker of this store on this host (for tests and shutdown).

        A worker stopped while training marks its run ``interrupted``.
        """
        self._reap_children()
        for worker in self.store.live_workers():
            if worker["host"] == host_name():
                stop_process(worker["pid"], timeout)
                self.store.remove_worker(worker["id"])
        for pid in list(self._children):
            stop_process(pid, timeout)
        self._reap_children()
        self.store.recover_orphans()

    def _start_worker(self, device: str | None) -> int:
        """Launch ``python -m mtlcore worker`` detached, its output in home/logs; return its pid."""
        command = [sys.executable, "-m", "mtlcore", "worker", "--home", str(self.store.home),
                   "--idle-exit", str(IDLE_EXIT_SECONDS)]
        if device == "ray":
            command += ["--ray", self.ray_address]
        elif device is not None:
            command += ["--device", device]
        env = dict(os.environ)
        # The cores are shared out between this runner's workers (a worker alone cannot know how many run).
        try:
            env[THREADS_VARIABLE] = str(threads_per_worker(max(1, self.max_workers)))
        except ValueError:  # a bad MTL_WORKER_THREADS: the worker says so in its log and uses the rule
            pass
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
        log_path = self.store.logs_dir() / f"worker-{time.strftime('%Y%m%d-%H%M%S')}-{device or 'auto'}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.store.home, env=env,
                start_new_session=True,  # not in the app's process group: a rerun or Ctrl-C leaves it running
            )
        self._children[process.pid] = process
        return process.pid

    def _reap_children(self) -> None:
        """Collect workers of ours that have exited, so they do not linger as zombies."""
        for pid, process in list(self._children.items()):
            if process.poll() is not None:
                del self._children[pid]
