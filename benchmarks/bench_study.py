"""How much faster is a study trained packed than its runs one after another?

The same members, in one process, two ways (taken in turns, medians):

    one by one   a fresh ``fit`` per run, as a naive user's loop would do it
                 (the study runner's worker is a warm process, so no process
                 start-up is counted on either side)
    packed       ``mtlcore.packing.fit_many``: members that share a dataset
                 train together as one stacked model where that pays

Two studies:

    relatedness  the app's default relatedness study: synthetic data at
                 correlations 1, 0.5, 0, -0.5; each task alone, hard sharing
                 and MMoE, over 3 seeds (48 runs of 10 epochs): MLPs, the kind
                 of model stacking helps on a CPU
    stl-vs-mtl   digits: 3 single-task baselines and the multi-task model
                 over 3 seeds (12 runs, 5 epochs): CNNs, which are not
                 stacked on a CPU (a grouped convolution is slower there),
                 so this one shows what packing does *not* buy on a CPU

It also checks that packing changes no result beyond rounding. The last
line, ``speedup: X.XX``, is the relatedness study's, against the runs one
by one in this process.

One more line, for the relatedness study only, clearly apart from the
speedup: the same runs as a person typing ``python -m mtlcore train`` once
per run would see them, each in a fresh process (start-up, imports and the
run's files included). Starting 48 processes per turn would take minutes,
so ``--cli K`` of the runs (the first K: each kind once, for K = 4) are
timed, in the same turns, and scaled to all of them.

    python benchmarks/bench_study.py [--repeats 3] [--threads N] [--cli 4]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtlcore import ExperimentConfig, fit  # noqa: E402
from mtlcore.packing import fit_many, pack_groups  # noqa: E402
from mtlcore.studies import StudySpec, default_base, plan  # noqa: E402
from bench_train import machine  # noqa: E402


def members(kind: str, **flat) -> list[ExperimentConfig]:
    """The member runs the study runner plans for ``kind`` (``mtlcore.studies.plan``), on the CPU."""
    base = ExperimentConfig.from_flat({**flat, "device": "cpu"}, base=default_base(kind))
    return [member.config for member in plan(StudySpec(kind, base, seeds=3))]


def one_by_one(configs):
    return [fit(c) for c in configs]


def cli_processes(configs: list[ExperimentConfig], sample: int) -> float:
    """Seconds to train the first ``sample`` configs with ``python -m mtlcore train``, one process each,
    scaled to all of ``configs``; the processes use as many torch threads as this one."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    picked = configs[:sample]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for i, config in enumerate(picked):
            path = Path(folder) / f"config{i}.json"
            path.write_text(config.to_json())
            subprocess.run([sys.executable, "-m", "mtlcore", "train", "--config", str(path),
                            "--out", str(Path(folder) / f"run{i}"), "--quiet"],
                           check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        return (time.perf_counter() - start) * len(configs) / len(picked)


def largest_difference(a, b) -> float:
    """Largest relative difference between two lists of results' test metrics."""
    worst = 0.0
    for ra, rb in zip(a, b):
        for task, metrics in ra.summary["test"].items():
            for name, value in metrics.items():
                other = rb.summary["test"][task][name]
                worst = max(worst, abs(value - other) / max(abs(other), 1e-3))
    return worst


def compare(name: str, configs: list[ExperimentConfig], repeats: int, cli_sample: int = 0) -> float:
    groups = pack_groups(configs)
    times = {"one by one": [], "packed": []}
    results = {}
    for turn in range(repeats + 1):  # the first turn warms up both
        for way, train in (("one by one", one_by_one), ("packed", fit_many)):
            start = time.perf_counter()
            results[way] = train(configs)
            if turn:
                times[way].append(time.perf_counter() - start)
        if turn and cli_sample:
            times.setdefault("CLI", []).append(cli_processes(configs, cli_sample))
    one, packed = statistics.median(times["one by one"]), statistics.median(times["packed"])
    sizes = sorted((len(g) for g in groups), reverse=True)
    print(f"\n{name}: {len(configs)} runs, trained in groups of {sizes}")
    for way in ("one by one", "packed"):
        t = times[way]
        print(f"  {way:10s} {statistics.median(t):6.2f} s   (runs: {', '.join(f'{s:.2f}' for s in t)})")
    print(f"  packed / one by one: x{one / packed:.2f}; largest relative difference of a test metric: "
          f"{largest_difference(results['packed'], results['one by one']):.1e}")
    if "CLI" in times:
        cli = statistics.median(times["CLI"])
        print(f"  (not the speedup) one `python -m mtlcore train` process per run, {cli_sample} runs timed and "
              f"scaled to {len(configs)}: {cli:.1f} s, x{cli / packed:.2f} the packed time "
              f"(runs: {', '.join(f'{s:.1f}' for s in times['CLI'])})")
    return one / packed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--cli", type=int, default=4, metavar="K",
                        help="relatedness runs timed as separate CLI processes per turn (0: skip that line)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine(torch.device("cpu")))
    digits = {"dataset.name": "digits", "tasks": "digit,parity,big", "dataset.n_samples": 0, "train.epochs": 5,
              "model.width": 32}
    compare("stl-vs-mtl on digits", members("stl-vs-mtl", **digits), args.repeats)
    speedup = compare("relatedness (the default study)", members("relatedness"), args.repeats, args.cli)
    print(f"speedup: {speedup:.2f}")


if __name__ == "__main__":
    main()
