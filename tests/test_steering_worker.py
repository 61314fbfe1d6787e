"""Steering a run that a real worker process trains: pause holds it with its heartbeat going, resume goes on.

The worker is started by the Runner, as the app starts it; the fixture stops it.
"""
import sqlite3

import pytest

from mtlcore.config import ExperimentConfig
from mtlcore.runs import Runner, RunStore, steering

from helpers import wait_for  # noqa: E402


@pytest.fixture
def runner(tmp_path):
    runner = Runner(RunStore(tmp_path / "home"), max_workers=1)
    yield runner
    runner.stop_workers(timeout=5)


def heartbeat(store: RunStore, run_id: str) -> float:
    with sqlite3.connect(store.db_path) as conn:
        return conn.execute("SELECT heartbeat FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def test_a_paused_run_keeps_its_heartbeat_and_resumes_where_it_stopped(runner):
    store = runner.store
    config = ExperimentConfig.from_flat({"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 1000,
                                         "train.max_samples": 200, "train.batch_size": 8, "tasks": "shape,color",
                                         "device": "cpu"})
    run_id = runner.submit(config, label="pause me")
    runner.ensure_workers()
    wait_for(lambda: store.step_metrics(run_id), "the first steps", 180)
    steering.pause(store, run_id)
    wait_for(lambda: store.get_run(run_id).message.startswith("Paused at step"), "the run to pause", 60)
    held = len(store.step_metrics(run_id))
    beat = heartbeat(store, run_id)
    # Its worker beats on while it holds the run (so it is never taken for dead), and trains no step.
    wait_for(lambda: heartbeat(store, run_id) > beat, "a heartbeat while paused", 60)
    assert store.get_run(run_id).state == "running"
    assert len(store.step_metrics(run_id)) == held
    steering.steer(store, run_id, "loss.weights.color", 0.5)
    steering.resume(store, run_id)
    wait_for(lambda: len(store.step_metrics(run_id)) > held + 5, "steps after resuming", 120)
    runner.cancel(run_id)
    ended = wait_for(lambda: (r := store.get_run(run_id)).state != "running" and r, "the run to end", 120)
    assert ended.state == "cancelled"
    history = [(e["key"], e["step"]) for e in ended.summary["steering"]]
    paused_at = history[0][1]
    assert history == [("pause", paused_at), ("loss.weights.color", paused_at), ("resume", paused_at)]
    assert ended.summary["final_weights"]["color"] == 0.5
    after = [s for s in store.step_metrics(run_id) if s["step"] > paused_at]
    assert after and all(s["weight"]["color"] == 0.5 for s in after)
