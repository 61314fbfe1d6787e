"""A class of thirty on one server: how long does each student wait for a first point, and for the end?

Thirty students (distinct browser keys) each press Start on the lesson's run
within ten seconds, as they would after the teacher's "go". The server has
the default background workers (``Runner``'s rule, or MTL_WORKERS), started
and warm before the lesson, as the app keeps them. For each student the
script measures, from their Start:

    first point   until the store holds the run's first step row (what the
                  Train page's chart draws first)
    finished      until the run has ended

and prints the median and the worst, first with packing on (the default)
and then with it off (MTL_PACKING=0), each in a fresh data folder.

    python benchmarks/bench_class.py                      # 30 students, the Home page's first preset
    python benchmarks/bench_class.py --students 8 --workers 1 --packing on
    python benchmarks/bench_class.py --lesson synthetic   # the relatedness lesson's small MLP runs

Lessons: ``shapes`` is the Home page's first preset (ui/presets.py: shapes,
shape + colour + size, hard sharing, 8 epochs); ``synthetic`` its
correlation preset (two regression tasks, 20 epochs). Packing only changes
what happens where stacking pays: MLPs anywhere, CNNs on a GPU; on a CPU the
shapes CNN trains alone either way (mtlcore.speed.stacking_pays).

Never run as a test: timings on a shared machine are for people to read.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtlcore import ExperimentConfig  # noqa: E402
from mtlcore.owners import Owner, new_key  # noqa: E402
from mtlcore.runs import Runner, RunStore  # noqa: E402
from mtlcore.runs.database import reading  # noqa: E402
from mtlcore.runs.runner import PACKING_VARIABLE, threads_per_worker  # noqa: E402
from ui.presets import PRESETS  # noqa: E402  (plain data: no Streamlit)

LESSONS = {"shapes": PRESETS[0].settings, "synthetic": PRESETS[2].settings}
GOAL_FIRST_POINT, GOAL_MEDIAN_FINISH = 30.0, 180.0


def lesson_config(name: str, epochs: int | None) -> ExperimentConfig:
    settings = dict(LESSONS[name])
    if epochs:
        settings["train.epochs"] = str(epochs)
    return ExperimentConfig.from_flat(settings)


def wait_for(condition, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"gave up after {timeout:.0f} s")


def warm_workers(runner: Runner, timeout: float = 300.0) -> None:
    """Start the default workers and wait until each has registered and paid its warm-up (torch imports)."""
    runner.ensure_workers()
    wait_for(lambda: len(runner.store.live_workers()) >= runner.max_workers, timeout)
    # A worker registers before its warm-up (an optimizer's lazy imports); a tiny run proves it is past it.
    probe = ExperimentConfig.from_flat({"dataset.name": "synthetic", "dataset.n_samples": "200",
                                        "tasks": "task_a,task_b", "train.epochs": "1", "device": "cpu",
                                        "weighting.method": "uncertainty"})  # never packs: one per worker
    ids = [runner.store.add_run(probe, "warm-up", Owner("warm-up")).id for _ in range(runner.max_workers)]
    wait_for(lambda: all(runner.store.get_run(i).state == "finished" for i in ids), timeout)


def class_of(students: int, window: float, runner: Runner, config: ExperimentConfig, timeout: float) -> dict:
    """Students press Start evenly spread over ``window`` seconds; returns each one's waits (seconds)."""
    owners = [Owner.from_key(f"student {i + 1}", new_key()) for i in range(students)]
    started: dict[str, float] = {}
    first: dict[str, float] = {}
    ended: dict[str, float] = {}
    states: dict[str, str] = {}
    t0 = time.monotonic()
    pending = list(enumerate(owners))
    deadline = t0 + window + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        while pending and now - t0 >= pending[0][0] * window / max(1, students - 1):
            _, person = pending.pop(0)
            run_id = runner.submit(config, label="lesson", owner=person)
            started[run_id] = time.monotonic()
        _look(runner.store, started, first, ended, states)
        if not pending and len(ended) == len(started):
            break
        time.sleep(0.2)
    trained = [r.finished_at - r.started_at for r in runner.store.list_runs(label="lesson")
               if r.finished_at and r.started_at]
    return {"first": [first[i] - started[i] for i in started if i in first],
            "finished": [ended[i] - started[i] for i in started if i in ended],
            "students": students, "states": states, "total": time.monotonic() - t0, "trained": trained}


def _look(store: RunStore, started: dict, first: dict, ended: dict, states: dict) -> None:
    """Note, for each run, when its first step row appeared and when it ended."""
    now = time.monotonic()
    with reading(store.db_path) as conn:
        with_steps = {row[0] for row in conn.execute("SELECT DISTINCT run_id FROM step_metrics")}
        rows = conn.execute("SELECT id, state FROM runs").fetchall()
    for run_id in with_steps:
        if run_id in started and run_id not in first:
            first[run_id] = now
    for run_id, state in rows:
        if run_id in started and state not in ("queued", "running") and run_id not in ended:
            ended[run_id] = now
            states[run_id] = state


def report(name: str, result: dict) -> str:
    def line(what: str, values: list[float], goal: str) -> str:
        if not values:
            return f"  {what:12s} none of {result['students']} yet"
        missing = result["students"] - len(values)
        return (f"  {what:12s} median {statistics.median(values):6.1f} s   worst {max(values):6.1f} s"
                + (f"   ({missing} never got there)" if missing else "") + f"   {goal}")

    within = sum(v <= GOAL_FIRST_POINT for v in result["first"])
    failed = sorted({s for s in result["states"].values() if s != "finished"})
    return "\n".join([
        f"{name}: {result['students']} students, all runs ended after {result['total']:.0f} s"
        + (f" (some ended {', '.join(failed)})" if failed else ""),
        line("first point", result["first"], f"{within}/{result['students']} within {GOAL_FIRST_POINT:.0f} s"),
        line("finished", result["finished"], f"goal: median under {GOAL_MEDIAN_FINISH:.0f} s"),
        line("training", result["trained"], "a run's own time, claim to end (a packed group's members share it)"),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which everyone presses Start")
    parser.add_argument("--lesson", choices=sorted(LESSONS), default="shapes")
    parser.add_argument("--epochs", type=int, help="override the lesson's epochs")
    parser.add_argument("--workers", type=int, help="override the default worker count (MTL_WORKERS)")
    parser.add_argument("--packing", choices=("both", "on", "off"), default="both")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up on a class after this long")
    args = parser.parse_args()

    config = lesson_config(args.lesson, args.epochs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    modes = {"both": ("on", "off"), "on": ("on",), "off": ("off",)}[args.packing]
    for mode in modes:
        os.environ[PACKING_VARIABLE] = "1" if mode == "on" else "0"  # the workers inherit it
        with tempfile.TemporaryDirectory() as home:
            runner = Runner(RunStore(Path(home) / "home"), max_workers=args.workers, queue_cap_per_owner=3)
            print(f"machine: {os.cpu_count()} cores, load {load:.1f} at the start; {runner.max_workers} workers x "
                  f"{threads_per_worker(max(1, runner.max_workers))} threads; lesson {args.lesson} "
                  f"({config.train.epochs} epochs); packing {mode}", flush=True)
            try:
                warm_workers(runner)
                result = class_of(args.students, args.window, runner, config, args.timeout)
            finally:
                runner.stop_workers(timeout=10)
            print(report(f"packing {mode}", result), flush=True)


if __name__ == "__main__":
    main()
