"""Torch threads for a reproduction's training when another program keeps a core busy.

A reproduction trains in the process that asks for it (the command line, or
a thread of the app's server for the Findings page), while the app's worker
or another program may be training on the same cores. Torch's default is one
thread per core; when one of those cores is busy, each parallel operation
waits for the thread that has no core, and a step takes many times longer.

This times one batch of the relatedness reproduction's training (its four
runs stacked, as ``train_missing`` trains them) in one process, with 1
thread and with one per core, first on a quiet machine and then beside a
busy process (one per core but one, at normal priority, doing torch
operations on one thread as a worker does). Reported: the median of ``--repeats`` wall times, and the ratio
of each setting to 1 thread on the quiet machine.

    python benchmarks/bench_threads.py [--epochs 3] [--repeats 3]     # 10,000 examples

Never run as a test: timings on a shared machine are for people to read.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mtlcore.packing import fit_many  # noqa: E402
from mtlcore.reproduce.mmoe_relatedness import ARCHS, SHORT_CORRELATIONS, base_config  # noqa: E402


def configs(epochs: int) -> list:
    return [base_config(**{"train.epochs": epochs, "dataset.n_samples": 10_000, "model.arch": arch,
                           "dataset.correlation": p})
            for arch in ARCHS for p in SHORT_CORRELATIONS]


def timed(threads: int, batch: list, repeats: int) -> float:
    torch.set_num_threads(threads)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fit_many(batch, [[] for _ in batch])
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def busy_loop() -> None:
    """What a worker does: torch operations on one thread, without a pause."""
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while True:
        a = torch.tanh(a @ a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    batch = configs(args.epochs)
    fit_many(batch[:1], [[]])  # warm-up: torch's lazy imports, the dataset's cache
    results = {}
    for threads in sorted({1, cores}):
        results[("quiet", threads)] = timed(threads, batch, args.repeats)
    others = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(max(1, cores - 1))]
    for process in others:
        process.start()
    try:
        for threads in sorted({1, cores}):
            results[("busy", threads)] = timed(threads, batch, args.repeats)
    finally:
        for process in others:
            process.terminate()
    reference = results[("quiet", 1)]
    print(f"{len(batch)} runs stacked ({', '.join(ARCHS)} at p = {', '.join(map(str, SHORT_CORRELATIONS))}), "
          f"{args.epochs} epochs, {cores} cores; wall seconds, median of {args.repeats}")
    for (machine, threads), seconds in results.items():
        beside = "quiet machine" if machine == "quiet" else f"{len(others)} busy process(es) beside"
        print(f"{threads} thread(s), {beside}: {seconds:.2f} s ({seconds / reference:.2f}x 1 thread quiet)")


if __name__ == "__main__":
    main()
