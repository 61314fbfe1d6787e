"""How long does a person wait: from Start to a first point, and for a prediction?

    start     a background worker is running and idle (started by the Runner,
              as the app does, and past its warm-up); a run is submitted and
              the store is polled until its first step metric can be read --
              what the Train page's chart polls. Measured for the worker's
              first run and for runs after it, with the default config
              (shapes, 3 tasks) and a digits config.
    predict   ``predict_image`` on a PNG with a model loaded once from a
              finished run's checkpoint (as the Predict page caches it):
              preprocessing and the forward pass.

    python benchmarks/bench_latency.py [--repeats 3]

Never run as a test: timings on a shared machine are for people to read.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtlcore import ExperimentConfig, Runner, RunStore  # noqa: E402


def wait_for(condition, timeout: float = 120.0, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("gave up waiting")


def idle_worker(store: RunStore) -> None:
    """Wait until a worker is registered and has had time to finish its warm-up."""
    wait_for(lambda: store.live_workers(), timeout=120)
    time.sleep(8.0)  # the warm-up (torch's lazy imports) takes a few seconds on two busy cores


def seconds_to_first_point(runner: Runner, config: ExperimentConfig) -> tuple[float, str]:
    start = time.perf_counter()
    run_id = runner.submit(config, label="latency")
    wait_for(lambda: runner.store.step_metrics(run_id))
    return time.perf_counter() - start, run_id


def finish(runner: Runner, run_id: str, cancel: bool) -> None:
    if cancel:
        runner.cancel(run_id)
    wait_for(lambda: runner.store.get_run(run_id).state not in ("queued", "running"), timeout=600, every=0.1)


def a_png() -> bytes:
    """A red circle on white, as a person might draw it."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(image).ellipse((50, 50, 150, 150), fill=(230, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from bench_train import machine
    import torch

    print(machine(torch.device("cpu")))
    with tempfile.TemporaryDirectory() as home:
        runner = Runner(RunStore(Path(home) / "home"), max_workers=1)
        runner.ensure_workers()
        try:
            idle_worker(runner.store)
            configs = {
                "default (shapes, 3 tasks)": ExperimentConfig.from_flat({"device": "cpu"}),
                "digits, 4 tasks": ExperimentConfig.from_flat({"device": "cpu", "dataset.name": "digits",
                                                               "tasks": "digit,parity,big,ink"}),
            }
            print("\nstart: submit -> first step metric readable in the store")
            first = True
            for name, config in configs.items():
                times = []
                for _ in range(args.repeats):
                    seconds, run_id = seconds_to_first_point(runner, config)
                    times.append(seconds)
                    finish(runner, run_id, cancel=True)
                note = " (the first is the worker's first run)" if first else ""
                first = False
                print(f"  {name:28s} " + ", ".join(f"{t:.2f} s" for t in times) + note)
            # A short run to predict with.
            short = ExperimentConfig.from_flat({"device": "cpu", "train.epochs": 1})
            run_id = runner.submit(short, label="to predict with")
            finish(runner, run_id, cancel=False)
            checkpoint = runner.store.checkpoint_path(run_id)
        finally:
            runner.stop_workers(timeout=10)
        from mtlcore.predict import load_model, predict_image

        loaded = load_model(checkpoint)
        png = a_png()
        predict_image(loaded, png)  # the first call pays one-off costs (kernels, imports)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            predict_image(loaded, png)
            times.append((time.perf_counter() - start) * 1000)
        print(f"\npredict: predict_image on a PNG, model loaded once: median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms over {len(times)} calls")


if __name__ == "__main__":
    main()
