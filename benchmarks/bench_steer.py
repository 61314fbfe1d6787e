"""From a slider move to the first point that reflects it: live steering's feedback time.

With a warm background worker (started by the Runner, as the app does, past
its warm-up) training a long run, a new loss weight is written into the
store ``--moves`` times, as the Train page's slider does
(``mtlcore.runs.steering.steer``), and the store is polled (every 10 ms) for
the first stored step whose logged weight is the new value: what the live
chart would draw. Reported per move and as median and worst:

    total     write of the request -> first stored step point with the new weight
    pickup    write -> the worker took it (its ``applied_at``; the worker polls every 0.1 s)
    stored    pickup -> that step stored (the worker's StoreCallback flushes every 0.25 s)

The page itself polls the store once a second (its live fragment), so a
person sees the point up to a second after ``total``.

    python benchmarks/bench_steer.py [--moves 10] [--dataset shapes]

Never run as a test: timings on a shared machine are for people to read.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtlcore import ExperimentConfig  # noqa: E402
from mtlcore.runs import Runner, RunStore, steering  # noqa: E402

CONFIGS = {
    "shapes": {"dataset.name": "shapes", "tasks": "shape,color", "dataset.n_samples": 600, "train.epochs": 1000,
               "train.max_samples": 400, "train.batch_size": 32},
    "synthetic": {"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.n_samples": 1000,
                  "train.epochs": 1000, "train.max_samples": 800, "train.batch_size": 32},
}


def wait_for(condition, timeout: float = 120.0, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("gave up waiting")


def first_step_with(store: RunStore, run_id: str, task: str, value: float, after: int) -> dict:
    """The first stored step after ``after`` whose logged weight of ``task`` is ``value``."""
    for step in store.step_metrics(run_id, after_step=after):
        if step["weight"][task] == value:
            return step
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--dataset", choices=sorted(CONFIGS), default="shapes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-steer-"))
    os.environ["MTL_HOME"] = str(home)
    store = RunStore(home)
    runner = Runner(store, max_workers=1)
    runner.ensure_workers()
    try:
        wait_for(lambda: store.live_workers(), timeout=120)
        time.sleep(8.0)  # the worker's warm-up (torch's lazy imports)
        config = ExperimentConfig.from_flat({**CONFIGS[args.dataset], "device": args.device})
        task = config.tasks[-1]
        run_id = runner.submit(config, label="steer")
        wait_for(lambda: len(store.step_metrics(run_id)) > 20, timeout=180)
        rows = []
        for move in range(args.moves):
            value = round(0.5 + 0.25 * (move + 1), 2)  # a new value each time: 0.75, 1.0, ...
            last = store.step_metrics(run_id)[-1]["step"]
            written = time.time()
            steering.steer(store, run_id, f"loss.weights.{task}", value)
            step = wait_for(lambda: first_step_with(store, run_id, task, value, last), timeout=60)
            seen = time.time()
            [event] = [e for e in steering.events(store, run_id) if e.value == value and e.key.endswith(task)]
            rows.append({"total_s": seen - written, "pickup_s": event.applied_at - written,
                         "stored_s": seen - event.applied_at, "step": step["step"]})
            print(f"move {move + 1}: {rows[-1]['total_s']:.3f} s (pickup {rows[-1]['pickup_s']:.3f} s, "
                  f"stored {rows[-1]['stored_s']:.3f} s) at step {step['step']}")
            time.sleep(0.3)
        runner.cancel(run_id)
    finally:
        runner.stop_workers(timeout=10)
    report = {part: {"median": round(statistics.median(r[part] for r in rows), 3),
                     "worst": round(max(r[part] for r in rows), 3)} for part in ("total_s", "pickup_s", "stored_s")}
    report.update(moves=args.moves, dataset=args.dataset, device=args.device, load_average_1min=os.getloadavg()[0])
    print(json.dumps(report, indent=1))
    print(f"slider to first stored point: median {report['total_s']['median']:.2f} s, "
          f"worst {report['total_s']['worst']:.2f} s (goal: under 2 s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
