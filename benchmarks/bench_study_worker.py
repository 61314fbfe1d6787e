"""How much sooner does a study started from the app finish now that workers pack runs?

The app's path, end to end: the Studies page starts the default relatedness
study (``StudyStore.start`` with the app's ``Runner``: 3 runs per person),
one warm background worker process (``python -m mtlcore worker``'s
``run_worker``) trains it and moves it on after every run. Wall time from
pressing Start to the last member finished (its ``finished_at`` in the
store). Two ways, each with its own worker and data folder, taken in turns
(medians):

    one at a time   what workers did before: the study queues members one
                    by one under the cap, the worker claims one run and
                    trains it with ``fit`` (packing off, MTL_PACKING=0,
                    in this process and in the worker)
    packed          as shipped: the study queues each packable batch whole,
                    the worker claims it and trains it with
                    ``mtlcore.packing.fit_many`` (MAX_PACKED_RUNS at a time)

The study: synthetic data at correlations 1, 0.5, 0, -0.5; each task alone,
hard sharing and MMoE, over 3 seeds: 48 runs of 10 epochs. Identical runs are
not reused (a warm-up study, one seed, fills the workers' dataset caches).
It also checks that both ways report the same result. The last line is
``speedup: X.XX``, one at a time over packed.

    python benchmarks/bench_study_worker.py [--repeats 3] [--threads N] [--before DIR]

``--threads``: torch threads of each worker (0: what a worker takes, the
cores less one, as in the app). ``--before DIR``: the "one at a time"
worker runs the code in DIR instead, e.g. the commit before packing
workers (``git archive 55a8064 | tar -x -C DIR``), so that its bookkeeping
is the old one too. Never run as a test.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtlcore.devices import resolve_device  # noqa: E402
from mtlcore.runs import Runner, RunStore  # noqa: E402
from mtlcore.packing.grouping import PACKING_VARIABLE  # noqa: E402
from mtlcore.studies import StudySpec, StudyStore, default_base, plan  # noqa: E402
from bench_train import machine  # noqa: E402

WAYS = ("one at a time", "packed")

# What each worker process runs: the real worker loop, with packing turned
# off for "one at a time", and its torch threads fixed when asked.
WORKER = """
import sys
import torch
home, threads, way = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if threads:  # run_worker asks for the cores less one; the benchmark fixes the number instead
    fixed = torch.set_num_threads
    torch.set_num_threads = lambda n: fixed(threads)
from mtlcore.runs import run_worker, runner, worker
from mtlcore.studies import advance_studies
import os
if way == "one at a time":  # packing off: the worker claims one run at a time
    os.environ["MTL_PACKING"] = "0"
run_worker(home, idle_exit=3600, after_each_run=[advance_studies])  # as `python -m mtlcore worker` does
"""


@contextmanager
def packing(way: str):
    """In this process (where the study is started, as on the page): pack or not."""
    shipped = os.environ.get(PACKING_VARIABLE)
    if way == "one at a time":  # packing off: the study queues its members one by one (Runner.next_batch)
        os.environ[PACKING_VARIABLE] = "0"
    try:
        yield
    finally:
        os.environ.pop(PACKING_VARIABLE, None)
        if shipped is not None:
            os.environ[PACKING_VARIABLE] = shipped


def relatedness(seeds: int) -> StudySpec:
    """The Studies page's default relatedness study, trained afresh (no reuse)."""
    return StudySpec("relatedness", default_base("relatedness"), seeds=seeds, reuse=False)


def start_worker(home: Path, threads: int, way: str, code: Path) -> subprocess.Popen:
    """A worker process for ``way`` on the data folder ``home``, importing mtlcore from ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    log = open(home / "logs" / "bench-worker.log", "ab")
    return subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(threads), way], cwd=code, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def run_study_once(store: RunStore, way: str, seeds: int) -> tuple[float, dict]:
    """Start the study as the page does; return seconds to its last member's end, and its result."""
    studies = StudyStore(store)
    started = time.time()
    with packing(way):
        record = studies.start(relatedness(seeds), Runner(store, max_workers=0), owner="bench")
    while (record := studies.get(record.id)).state == "running":
        time.sleep(0.1)
    runs = [store.get_run(m.run_id) for m in record.members]
    if any(run.state != "finished" for run in runs):
        raise SystemExit(f"{way}: a run did not finish: {[(r.id, r.state, r.message) for r in runs]}")
    groups = Counter(run.summary.get("packed", 1) for run in runs)
    result = studies.result(record.id)["result"]
    result["groups"] = sorted(((size, count // size) for size, count in groups.items()), reverse=True)
    return max(run.finished_at for run in runs) - started, result


def largest_difference(a: dict, b: dict) -> float:
    """Largest difference of a row's mean benefit (percentage points) between two results."""
    return max(abs(ra["benefit"]["mean"] - rb["benefit"]["mean"]) for ra, rb in zip(a["rows"], b["rows"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads of each worker (0: cores less one)")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="code the 'one at a time' worker runs (default: this code, packing turned off)")
    args = parser.parse_args()
    code = {"one at a time": (args.before or ROOT).resolve(), "packed": ROOT}
    if not (code["one at a time"] / "mtlcore").is_dir():
        raise SystemExit(f"--before {args.before} holds no mtlcore folder; give the root of a checkout.")
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))
    print(machine(resolve_device("auto")), "(this process; the workers use the same number)")
    print(f"study: the default relatedness study, {len(plan(relatedness(3)))} runs; one worker per way")
    folder = Path(tempfile.mkdtemp(prefix="bench-study-worker-"))
    stores = {way: RunStore(folder / way.replace(" ", "-")) for way in WAYS}
    workers = {way: start_worker(stores[way].home, args.threads, way, code[way]) for way in WAYS}
    print(f"'one at a time' worker code: {code['one at a time']}")
    try:
        for way in WAYS:
            while not stores[way].live_workers():
                time.sleep(0.1)
            run_study_once(stores[way], way, seeds=1)  # warm-up: torch, the datasets
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        results = {}
        for _ in range(args.repeats):
            for way in WAYS:
                seconds, results[way] = run_study_once(stores[way], way, seeds=3)
                times[way].append(seconds)
    finally:
        for process in workers.values():
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    for way in WAYS:
        groups = ", ".join(f"{n} x {size}" for size, n in results[way]["groups"])
        print(f"  {way:14s} {statistics.median(times[way]):6.2f} s   (runs: "
              f"{', '.join(f'{t:.2f}' for t in times[way])}; trained as {groups})")
    one, packed = (statistics.median(times[way]) for way in WAYS)
    print(f"  largest difference of a mean benefit between the two ways: "
          f"{largest_difference(results['one at a time'], results['packed']):.2e} percentage points")
    print(f"speedup: {one / packed:.2f}")


if __name__ == "__main__":
    main()
