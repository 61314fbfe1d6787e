"""What do diagnostics and gradient combination cost per training step?

Times one training step on shapes with 3 tasks (shape, color, size; hard
sharing, the default CNN) for

    equal                 plain weighted sum, one backward pass: the reference
    equal + diagnostics   the same step plus Diagnostics.after_step (cosines and
                          lookahead affinity), as with train.diagnostics_every=1
    upgrad                per-task gradients on the trunk, aggregated by UPGrad
    pcgrad, gradnorm      two more methods that need per-task gradients

and prints each step time (minimum and median over the steps, taken in
turns) and its ratio to the reference.

    python benchmarks/bench_diagnostics.py [--steps 30] [--threads 1] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtlcore import WEIGHTINGS, ExperimentConfig, load_dataset
from mtlcore.engine import TrainingRun


def make_run(method: str, data, device: str, width: int, batch_size: int) -> TrainingRun:
    config = ExperimentConfig.from_flat({
        "dataset.n_samples": 1000, "tasks": "shape,color,size", "weighting.method": method,
        "model.width": width, "train.batch_size": batch_size, "device": device,
    })
    return TrainingRun(config, data, torch.device(device))


def batch_of(run: TrainingRun):
    n = run.config.train.batch_size
    split = run.splits["train"]
    return split.x[:n], {t: v[:n] for t, v in split.y.items()}


def timed_step(run: TrainingRun, diagnostics: bool) -> float:
    """Wall time of one step on a fixed batch (plus diagnostics if asked)."""
    x, y = batch_of(run)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run.train_step(x, y)
    if diagnostics:
        run.diagnostics.after_step(run, x, y)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("shapes", n_samples=1000)
    cases = [("equal", False), ("equal", True), ("upgrad", False), ("pcgrad", False), ("gradnorm", False)]
    for method in sorted({m for m, _ in cases} - set(WEIGHTINGS.names())):
        print(f"skipped: {method} is not available here (python -m mtlcore doctor says which package is missing)")
    cases = [(method, diagnostics) for method, diagnostics in cases if method in WEIGHTINGS]
    runs = [make_run(method, data, args.device, args.width, args.batch_size) for method, _ in cases]
    times: list[list[float]] = [[] for _ in cases]
    # Round-robin, so that a busy moment on the machine slows every case alike;
    # the minimum is the least disturbed measurement, the median the typical one.
    for step in range(args.steps + 3):
        for k, ((_, diagnostics), run) in enumerate(zip(cases, runs)):
            seconds = timed_step(run, diagnostics)
            if step >= 3:  # warm-up
                times[k].append(seconds)
    print(f"device={args.device} threads={torch.get_num_threads()} width={args.width} "
          f"batch={args.batch_size} steps={args.steps}")
    ref_min, ref_median = min(times[0]), statistics.median(times[0])
    for (method, diagnostics), t in zip(cases, times):
        label = method + (" + diagnostics" if diagnostics else "")
        print(f"{label:22s} min {min(t) * 1000:7.1f} ms  x{min(t) / ref_min:.2f}   "
              f"median {statistics.median(t) * 1000:7.1f} ms  x{statistics.median(t) / ref_median:.2f}")

if __name__ == "__main__":
    main()
