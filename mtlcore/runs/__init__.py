"""Background runs: a queue in a SQLite store, worker processes that train, cancel.

In class, everyone's runs train in the background, in turn, without
freezing pages, and nothing is lost when a tab closes, a worker dies or the
app restarts. One file per job:

    home.py         where the data folder is (MTL_HOME, else ~/.mtl-lab), and its size on disk
    schema.py       every table of the SQLite file (runs, metrics, workers, studies, ...): one owner
    database.py     the SQLite file: WAL mode, one connection per call, its errors in one sentence
    record.py       RunRecord (one run's row), the run states, run ids
    store.py        RunStore: runs, metrics, workers; claiming; crash recovery; written in parts:
      queueing.py     queueing runs under the per-person cap; the fair queue's order and places
      claims.py       claiming runs for a worker; the claim token that fences its writes
      progress.py     a run's metrics, device and ending, and its folder's copy
      liveness.py     the workers' rows and heartbeats; runs of vanished workers -> interrupted
      rows.py         a row as a RunRecord; logs as JSON
    queue_order.py  the fair queue: which queued run starts next, positions, estimated starts
    run_files.py    a run folder's copy of its row and metrics (to rebuild a lost row from)
    integrity.py    check: runs the database lost but their folders hold
    repair.py       repair: rebuild them from the folders
    pruning.py      prune: delete old ended runs, thin ended runs' per-step rows
    callback.py     the streaming callback (metrics, checkpoints, stop) over a sink: StoreCallback
                    writes into the store; ray_remote's MailboxCallback sends to the mailbox
    checkpoints.py  load_checkpoint (weights_only=True)
    worker.py       run_worker: the loop of a worker process; after_each_run hooks (the
                    command line hands it mtlcore.studies.advance_studies: runs know no studies)
    runner.py       Runner: submit, cancel, ensure_workers (what the app calls)
    processes.py    is a process alive, stop it
    ray_dispatcher.py   optional second executor: sends queued runs to a Ray
                        cluster and writes what comes back into the store
    ray_remote.py   what runs on the cluster: the training task, the mailbox actor
    datasets.py     delete an imported dataset unless queued or running runs use it

    >>> from mtlcore.runs import RunStore, Runner
    >>> runner = Runner(RunStore())
    >>> runner.ensure_workers()
    >>> run_id = runner.submit(config, label="baseline", owner="alice")
    >>> runner.store.step_metrics(run_id)
"""
from .callback import StoreCallback
from .checkpoints import load_checkpoint
from .errors import ClaimLost, NotOwnerError, QueueFullError, StoreDamaged, StoreError, StoreUnwritable
from .home import FolderSize, data_folder_size, default_home
from .integrity import Finding, quick_check
from .queue_order import QueuePlace
from .record import ACTIVE_STATES, FINAL_STATES, STATES, RunRecord
from .runner import Runner
from .store import RunStore
from .worker import run_worker

__all__ = [
    "ACTIVE_STATES",
    "ClaimLost",
    "FINAL_STATES",
    "Finding",
    "FolderSize",
    "NotOwnerError",
    "QueueFullError",
    "QueuePlace",
    "RunRecord",
    "RunStore",
    "Runner",
    "STATES",
    "StoreCallback",
    "StoreDamaged",
    "StoreError",
    "StoreUnwritable",
    "data_folder_size",
    "default_home",
    "load_checkpoint",
    "quick_check",
    "run_worker",
]
