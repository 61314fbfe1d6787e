"""Does bfloat16 autocast cost accuracy? float32 against bfloat16, over seeds.

Trains the default shapes run (hard sharing, shape, color and size) for a
fixed number of epochs with ``train.precision=float32`` and
``train.precision=bfloat16``, for several seeds, and prints each task's
test metric as mean +- standard deviation over the seeds, with the time per
run. bfloat16 keeps accuracy when its difference from float32 is within the
seed-to-seed spread.

    python benchmarks/bench_precision.py [--seeds 3] [--epochs 5] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtlcore import ExperimentConfig, fit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from bench_train import machine

    print(machine(torch.device("cpu")))
    metrics: dict[str, dict[str, list[float]]] = {"float32": {}, "bfloat16": {}}
    seconds: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for seed in range(args.seeds):
        for precision in metrics:  # in turns, so that load on the machine hits both alike
            config = ExperimentConfig.from_flat({"tasks": "shape,color,size", "train.epochs": args.epochs,
                                                 "seed": seed, "train.precision": precision, "device": "cpu"})
            summary = fit(config).summary
            seconds[precision].append(summary["seconds"])
            for task, values in summary["test"].items():
                name = summary["tasks"][task]["metric"]
                metrics[precision].setdefault(f"{task} {name}", []).append(values[name])
    print(f"\nshapes, 3 tasks, {args.epochs} epochs, seeds 0..{args.seeds - 1}: test metric mean +- std")
    print(f"  {'':16s} {'float32':>18s} {'bfloat16':>18s}")
    for key in metrics["float32"]:
        cells = []
        for precision in metrics:
            values = metrics[precision][key]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} +- {spread:.3f}")
        print(f"  {key:16s} {cells[0]:>18s} {cells[1]:>18s}")
    print(f"  {'seconds per run':16s} {statistics.median(seconds['float32']):>18.1f} "
          f"{statistics.median(seconds['bfloat16']):>18.1f}")


if __name__ == "__main__":
    main()
