"""Runs on a Ray cluster through the Ray dispatcher: the store sees them as it sees local runs.

One private Ray instance (loopback, 2 CPUs) serves the whole module, because
starting Ray takes seconds; the dispatcher runs in a thread of this process,
connected to it. Skipped only where Ray is not installed (requirements-ray.txt).
"""
import os
import subprocess
import sys
import threading

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at test time
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

from mtlcore.config import ExperimentConfig  # noqa: E402
from mtlcore.runs import Runner, RunStore, load_checkpoint  # noqa: E402
from mtlcore.runs.ray_dispatcher import KILLED_MESSAGE, LOST_MESSAGE, RayDispatcher  # noqa: E402
from mtlcore.runs.worker import train_one  # noqa: E402
from mtlcore.studies import StudySpec, StudyStore, default_base  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from helpers import wait_for  # noqa: E402


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 2,
            "train.max_samples": 100, "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


def long_config() -> ExperimentConfig:
    """Trains for minutes unless stopped: for tests that act while a run is on the cluster."""
    return tiny_config(**{"train.epochs": 1000, "train.batch_size": 8})


def ended(store: RunStore, run_id: str):
    record = store.get_run(run_id)
    return record if record.state not in ("queued", "running") else None


class DispatcherThread:
    """A RayDispatcher looping in a thread, stopped (its tasks killed) on ``stop``."""

    def __init__(self, store: RunStore):
        self.dispatcher = RayDispatcher(store, address="test")
        self.shutdown = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.run, args=(self.shutdown,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown.set()
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def cluster():
    # Workers must import mtlcore from this checkout, wherever pytest was started.
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": REPO, "RAY_USAGE_STATS_ENABLED": "0"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_runner(cluster, tmp_path_factory):
    """A store fed by one dispatcher, and a runner that starts no local workers (as the app with MTL_RAY_ADDRESS)."""
    store = RunStore(tmp_path_factory.mktemp("ray") / "home")
    dispatcher = DispatcherThread(store)
    yield Runner(store, max_workers=0, queue_cap_per_owner=100), dispatcher.dispatcher
    dispatcher.stop()


def running_with_steps(store, dispatcher, run_id):
    """The run's HeldRun once it trains on the cluster and its first steps have reached the store."""
    held = dispatcher.held.get(run_id)
    return held if held and store.step_metrics(run_id) else None


def test_without_ray_the_runner_never_imports_it(tmp_path):
    code = ("import sys; from mtlcore.runs import Runner, RunStore; import mtlcore.cli.runs; "
            f"r = Runner(RunStore({str(tmp_path)!r}), max_workers=1); r.worker_devices(); "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    env = {k: v for k, v in os.environ.items() if k != "MTL_RAY_ADDRESS"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env, timeout=60)


def test_with_an_address_the_runner_starts_one_ray_dispatcher(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_RAY_ADDRESS", "auto")
    runner = Runner(RunStore(tmp_path), max_workers=4)
    assert runner.ray_address == "auto" and runner.worker_devices() == ["ray"]


def test_a_run_on_ray_stores_metrics_states_and_checkpoint_as_a_local_worker_does(ray_runner, tmp_path):
    runner, dispatcher = ray_runner
    store = runner.store
    run_id = runner.submit(tiny_config(), label="on ray", owner="alice")
    record = wait_for(lambda: ended(store, run_id), "the Ray run to end", timeout=120)

    local = RunStore(tmp_path / "local")
    local_id = local.add_run(tiny_config(), "local").id
    assert local.claim_next("test:1").id == local_id
    train_one(local, local.get_run(local_id))
    expected = local.get_run(local_id)

    assert (record.state, record.message, record.progress) == (expected.state, expected.message, 1.0)
    assert record.device == "cpu" and record.worker == dispatcher.name
    assert [s["step"] for s in store.step_metrics(run_id)] == [s["step"] for s in local.step_metrics(local_id)]
    assert [sorted(e) for e in store.epoch_metrics(run_id)] == [sorted(e) for e in local.epoch_metrics(local_id)]
    assert record.summary.keys() == expected.summary.keys()
    assert record.summary["test"].keys() == expected.summary["test"].keys()
    weights = load_checkpoint(store.checkpoint_path(run_id))["model"]
    assert weights.keys() == load_checkpoint(local.checkpoint_path(local_id))["model"].keys()
    assert run_id not in dispatcher.held


def test_a_study_trains_its_members_on_ray(ray_runner):
    runner, _ = ray_runner
    settings = {"tasks": "shape,color", "device": "cpu", "dataset.n_samples": 300,
                "train.max_samples": 100, "train.epochs": 1}
    spec = StudySpec("stl-vs-mtl", ExperimentConfig.from_flat(settings, default_base("stl-vs-mtl")), seeds=1)
    studies = StudyStore(runner.store)
    study = studies.start(spec, runner, owner="bob")
    done = wait_for(lambda: (s := studies.get(study.id)).state != "running" and s, "the study to end", timeout=180)
    assert done.state == "finished" and done.progress_text == f"{done.total} of {done.total} runs done"
    runs = runner.store.list_runs(study_id=study.id)
    assert runs and all(r.state == "finished" and runner.store.epoch_metrics(r.id) for r in runs)
    assert studies.result(study.id)["result"]["delta_m"] is not None


def test_cancelling_a_run_stops_its_ray_task_and_keeps_its_metrics(ray_runner):
    runner, dispatcher = ray_runner
    store = runner.store
    run_id = runner.submit(long_config(), label="to cancel", owner="carol")
    held = wait_for(lambda: running_with_steps(store, dispatcher, run_id), "the run to train on Ray", timeout=120)
    assert "is stopping" in runner.cancel(run_id, owner="carol")
    record = wait_for(lambda: ended(store, run_id), "the cancelled run to end")
    assert record.state == "cancelled" and store.step_metrics(run_id)
    assert ray.get(held.task, timeout=30)["state"] == "cancelled"  # the task itself returned, not killed
    assert run_id not in dispatcher.held


def test_killing_the_ray_task_mid_run_leaves_the_run_interrupted(ray_runner):
    runner, dispatcher = ray_runner
    store = runner.store
    run_id = runner.submit(long_config(), label="to kill", owner="dave")
    held = wait_for(lambda: running_with_steps(store, dispatcher, run_id), "the run to train on Ray", timeout=120)
    ray.cancel(held.task, force=True)
    record = wait_for(lambda: ended(store, run_id), "the killed run to be marked")
    assert (record.state, record.message) == ("interrupted", KILLED_MESSAGE)
    assert store.step_metrics(run_id)  # nothing already stored is lost


def test_a_run_taken_from_a_paused_dispatcher_stays_interrupted_and_its_task_stops(ray_runner):
    # What recovery does while the dispatcher is paused past the heartbeat timeout: the run is
    # marked interrupted and its claim taken away. The dispatcher's next write for it is refused.
    from mtlcore.runs.database import writing
    from mtlcore.runs.store import INTERRUPTED_MESSAGE

    runner, dispatcher = ray_runner
    store = runner.store
    run_id = runner.submit(long_config(), label="paused", owner="erin")
    held = wait_for(lambda: running_with_steps(store, dispatcher, run_id), "the run to train on Ray", timeout=120)
    with writing(store.db_path) as conn:
        conn.execute("UPDATE runs SET state = 'interrupted', message = ?, claim = NULL WHERE id = ?",
                     (INTERRUPTED_MESSAGE, run_id))
    steps = len(store.step_metrics(run_id))
    wait_for(lambda: run_id not in dispatcher.held, "the dispatcher to let the run go")
    done, _ = ray.wait([held.task], timeout=60)
    assert done, "its Ray task is stopped, not left training"
    record = store.get_run(run_id)
    assert (record.state, record.message) == ("interrupted", INTERRUPTED_MESSAGE)
    assert len(store.step_metrics(run_id)) == steps


def test_losing_the_cluster_marks_the_runs_it_held_interrupted(cluster, tmp_path):
    store = RunStore(tmp_path / "home")
    run_id = store.add_run(long_config(), "lost").id
    thread = DispatcherThread(store)
    try:
        wait_for(lambda: running_with_steps(store, thread.dispatcher, run_id), "the run to train on Ray", timeout=120)
        ray.kill(thread.dispatcher.mailbox)  # what the dispatcher sees when the cluster goes away
        record = wait_for(lambda: ended(store, run_id), "the run to be marked")
        assert (record.state, record.message) == ("interrupted", LOST_MESSAGE.format(address="test"))
        assert store.step_metrics(run_id)
        thread.thread.join(timeout=30)
        assert not thread.thread.is_alive()  # it gives up; the runner starts a fresh one
    finally:
        for held in thread.dispatcher.held.values():
            ray.cancel(held.task, force=True)
        thread.stop()
