"""How long does one small study take on local workers, and on a Ray instance?

Runs the same STL-vs-MTL study (shapes, tasks shape and color, 2 seeds:
6 runs) twice, each in a fresh data folder:

    local   Runner with --workers local worker processes (the default executor)
    ray     Runner with MTL_RAY_ADDRESS: one dispatcher, runs side by side on the cluster

and prints the wall time from the study's start to its last run's end. The
executor is started and warm (a worker has registered) before the clock starts.

    ray start --head --num-cpus 2              # once, in another terminal
    python benchmarks/bench_ray_study.py [--ray auto] [--workers 1] [--epochs 2] [--seeds 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from importlib.util import find_spec

from mtlcore.config import ExperimentConfig
from mtlcore.runs import Runner, RunStore
from mtlcore.studies import StudySpec, StudyStore, default_base


def study_spec(epochs: int, seeds: int) -> StudySpec:
    settings = {"tasks": "shape,color", "device": "cpu", "dataset.n_samples": 1000, "train.epochs": epochs}
    return StudySpec("stl-vs-mtl", ExperimentConfig.from_flat(settings, default_base("stl-vs-mtl")), seeds=seeds)


def time_study(runner: Runner, spec: StudySpec) -> float:
    """Seconds from the study's start to its end, with the executor already running."""
    runner.ensure_workers()
    while not runner.store.live_workers():
        time.sleep(0.1)
    time.sleep(3)  # the worker or dispatcher finishes importing torch and connecting
    studies = StudyStore(runner.store)
    started = time.perf_counter()
    study = studies.start(spec, runner, owner="bench")
    while studies.get(study.id).state == "running":
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    assert studies.get(study.id).state == "finished", studies.get(study.id)
    runner.stop_workers()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ray", default="auto", help="Ray address (auto, local, ray://host:10001)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    spec = study_spec(args.epochs, args.seeds)
    sides = [("local", None, args.workers), ("ray", args.ray, 1)]
    if find_spec("ray") is None:  # optional: measure the local side and say why the other is missing
        print("skipped: the ray side (Ray is not installed: pip install -r requirements-ray.txt)")
        sides = sides[:1]
    for name, address, workers in sides:
        with tempfile.TemporaryDirectory() as home:
            # A queue cap above the study's size, so the study submits every member at once.
            runner = Runner(RunStore(home), max_workers=workers, queue_cap_per_owner=100, ray_address=address)
            if address is None:
                runner.ray_address = None  # ignore MTL_RAY_ADDRESS for the local side
            print(f"{name:6s} {time_study(runner, spec):7.1f} s", flush=True)


if __name__ == "__main__":
    main()
