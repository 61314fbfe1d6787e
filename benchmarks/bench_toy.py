"""The gradient playground's comparison: methods stepped in turns against stepped together.

In turns (the Gradients page before): every method computes the toy's losses
and gradients at its own five points, then updates. Together
(``mtlcore.toy.step_together``, the page now): one call gives the losses
and gradients at every method's points, and each method then does its own
update (each with its own Adam here; the page's processes also share one
Adam call, ``joint_optimizer``, which the ``--processes`` side includes).
The two sides run in turns in this process, ``--repeats`` times; the
medians are reported, and the last line is ``speedup: X.XX``.

``--processes N`` (default 2) also times, in wall-clock seconds, a
comparison in N processes of its own (``ToyComparison(processes=N)``, the
page's way) against the same comparison in a thread of this process.

    python benchmarks/bench_toy.py                        # six cheap methods, 1,000 steps
    python benchmarks/bench_toy.py --methods equal,mgda --steps 300
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mtlcore.toy import live  # noqa: E402
from mtlcore.toy.problem import STEPS  # noqa: E402
from mtlcore.toy.trajectories import ToyOptimisation, step_together  # noqa: E402

CHEAP = "equal,famo,pcgrad,uncertainty,rlw,dwa"


def in_turns(methods: list[str], steps: int) -> float:
    runs = [ToyOptimisation(m) for m in methods]
    for run in runs:
        run.run(2)  # warm-up: the optimiser's first step
    begin = time.process_time()
    for _ in range(steps):
        for run in runs:
            run.step()
    return time.process_time() - begin


def together(methods: list[str], steps: int) -> float:
    runs = [ToyOptimisation(m) for m in methods]
    for _ in range(2):
        step_together(runs)
    begin = time.process_time()
    for _ in range(steps):
        step_together(runs)
    return time.process_time() - begin


def comparison_seconds(methods: list[str], steps: int, processes: int) -> float:
    """Wall-clock seconds of a whole comparison (in a thread of this process when ``processes`` is 0)."""
    begin = time.perf_counter()
    comparison = live.ToyComparison(methods, steps, processes=processes).start()
    comparison.wait()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=CHEAP, help=f"comma-separated weighting methods (default {CHEAP})")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the page's thread uses what torch has)")
    parser.add_argument("--processes", type=int, default=2, help="computing processes to time against a thread (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    turns, joint = [], []
    for _ in range(args.repeats):
        turns.append(in_turns(methods, args.steps))
        joint.append(together(methods, args.steps))
    a, b = statistics.median(turns), statistics.median(joint)
    print(f"{len(methods)} methods ({', '.join(methods)}), {args.steps} steps from the five starts, "
          f"{args.threads} thread(s), CPU seconds (median of {args.repeats})")
    print(f"in turns: {a:.2f} s ({a / args.steps * 1e3:.2f} ms per step of all methods)")
    print(f"together: {b:.2f} s ({b / args.steps * 1e3:.2f} ms per step of all methods)")
    print(f"a full comparison ({STEPS:,} steps): {a / args.steps * STEPS:.0f} s in turns, "
          f"{b / args.steps * STEPS:.0f} s together (CPU)")
    if args.processes:
        live.warm_up(methods, processes=True)
        live.measure_step_costs(methods)
        apart, here = [], []
        for _ in range(args.repeats):
            apart.append(comparison_seconds(methods, args.steps, args.processes))
            here.append(comparison_seconds(methods, args.steps, 0))
        p, t = statistics.median(apart), statistics.median(here)
        print(f"a comparison in {args.processes} processes: {p:.2f} s wall, in a thread: {t:.2f} s "
              f"({t / p:.2f}x); {STEPS:,} steps: about {p / args.steps * STEPS:.0f} s in processes")
    print(f"speedup: {a / b:.2f}")


if __name__ == "__main__":
    main()
