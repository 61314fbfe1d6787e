"""The run store: runs, metrics and workers kept in SQLite under a data folder.

These tests train in-process (``run_worker(..., once=True)``) or not at all;
tests/test_runner.py covers worker processes.
"""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from mtlcore.config import ConfigError, ExperimentConfig
from mtlcore.runs import (
    NotOwnerError, QueueFullError, Runner, RunStore, StoreError, default_home, load_checkpoint, run_worker,
)
from mtlcore.runs.processes import host_name


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 1,
            "train.max_samples": 200, "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


@pytest.fixture
def runner(store):
    return Runner(store, max_workers=1, queue_cap_per_owner=3)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    # run_worker leaves a core to the web server by lowering torch's threads; undo it for other tests.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_run_goes_from_queued_to_finished_with_metrics_and_a_checkpoint(runner, store):
    run_id = runner.submit(tiny_config(**{"train.epochs": 2}), label="baseline", owner="alice")
    assert store.get_run(run_id).state == "queued"

    assert run_worker(store.home, once=True) == 1

    run = store.get_run(run_id)
    assert (run.state, run.label, run.owner, run.device) == ("finished", "baseline", "alice", "cpu")
    assert run.progress == 1.0 and run.started_at and run.finished_at >= run.started_at
    assert set(run.summary["test"]) == {"shape", "color", "size"}
    steps = store.step_metrics(run_id)
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1)) and "t" in steps[0]
    assert set(steps[0]["loss"]) == {"shape", "color", "size"}
    assert store.step_metrics(run_id, after_step=3)[0]["step"] == 4
    assert [e["epoch"] for e in store.epoch_metrics(run_id)] == [1, 2]
    checkpoint = torch.load(store.checkpoint_path(run_id), weights_only=True)
    assert checkpoint["config"]["tasks"] == ["shape", "color", "size"] and checkpoint["model"]
    assert load_checkpoint(store.checkpoint_path(run_id))["epoch"] == 2


def test_a_failing_run_is_recorded_with_its_error_and_the_worker_goes_on(store, runner):
    # Queued behind the runner's back, so that it is only found broken while training.
    broken = store.add_run(tiny_config(tasks="shape,flavour"), label="broken").id
    good = runner.submit(tiny_config(), label="good")

    assert run_worker(store.home, idle_exit=0) == 2

    failed = store.get_run(broken)
    assert failed.state == "failed" and "flavour" in failed.message
    assert store.get_run(good).state == "finished"


def test_a_bad_config_is_refused_before_it_is_queued(runner, store):
    with pytest.raises(ConfigError, match="flavour"):
        runner.submit(tiny_config(tasks="shape,flavour"))
    assert store.list_runs() == []


def test_a_queued_run_is_cancelled_at_once_and_never_trains(runner, store):
    run_id = runner.submit(tiny_config(), owner="alice")
    assert "cancelled" in runner.cancel(run_id, owner="alice")
    run = store.get_run(run_id)
    assert run.state == "cancelled" and run.finished_at is not None
    assert run_worker(store.home, once=True) == 0
    assert store.get_run(run_id).started_at is None


def test_only_the_owner_can_stop_a_run(runner, store):
    run_id = runner.submit(tiny_config(), owner="alice")
    with pytest.raises(NotOwnerError, match="Only alice can stop this run."):
        runner.cancel(run_id, owner="bob")
    assert store.get_run(run_id).state == "queued"
    runner.cancel(run_id)  # the teacher (no owner given) may stop anything
    assert store.get_run(run_id).state == "cancelled"


def test_cancelling_an_ended_run_changes_nothing(runner, store):
    run_id = runner.submit(tiny_config())
    run_worker(store.home, once=True)
    assert "already ended" in runner.cancel(run_id)
    assert store.get_run(run_id).state == "finished"


def test_the_per_person_cap_refuses_with_a_clear_message(runner, store):
    ids = [runner.submit(tiny_config(), owner="alice") for _ in range(3)]
    with pytest.raises(QueueFullError, match="alice already has 3 runs waiting or training .the limit is 3"):
        runner.submit(tiny_config(), owner="alice")
    runner.submit(tiny_config(), owner="bob")  # others are not held up
    runner.cancel(ids[0])
    runner.submit(tiny_config(), owner="alice")  # a free place again
    assert len(store.list_runs(owner="alice", states=["queued"])) == 3


def test_twenty_submits_from_twenty_threads_are_all_kept_once(store):
    runner = Runner(store, max_workers=1, queue_cap_per_owner=100)
    config, ids, errors = tiny_config(), [], []

    def submit(i):
        try:
            ids.append(runner.submit(config, label=f"run {i}", owner=f"student{i % 4}"))
        except Exception as error:  # noqa: BLE001 - collected and reported below
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(ids)) == 20
    stored = store.list_runs()
    assert sorted(r.id for r in stored) == sorted(ids)
    assert sorted(r.label for r in stored) == sorted(f"run {i}" for i in range(20))


def test_runs_are_claimed_oldest_first_and_never_twice(runner, store):
    ids = [runner.submit(tiny_config(), owner=f"s{i}") for i in range(12)]
    assert [r.id for r in store.list_runs()] == ids[::-1]  # listed newest first
    first = [store.claim_next(f"{host_name()}:1").id for _ in range(3)]
    assert first == ids[:3]  # in order of creation
    claims: list[tuple[str, str]] = []

    def claim(worker):
        while (run := store.claim_next(worker)) is not None:
            claims.append((worker, run.id))

    threads = [threading.Thread(target=claim, args=(f"{host_name()}:{i + 2}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run_id for _, run_id in claims) == sorted(ids[3:])  # each exactly once
    assert all(store.get_run(run_id).worker == worker for worker, run_id in claims)


def test_a_run_whose_worker_vanished_is_interrupted_when_the_store_opens(runner, store):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = runner.submit(tiny_config(), owner="a")
    silent = runner.submit(tiny_config(), owner="b")
    waiting = runner.submit(tiny_config(), owner="c")
    store.claim_next(f"{host_name()}:{gone.pid}")  # its process is gone
    store.claim_next("another-host:123")  # on another machine: only its heartbeat can tell
    with store_connection(store) as conn:
        conn.execute("UPDATE runs SET heartbeat = heartbeat - 120 WHERE id = ?", (silent,))

    reopened = RunStore(store.home)

    assert reopened.get_run(orphan).state == "interrupted"
    assert "worker process stopped" in reopened.get_run(orphan).message
    assert reopened.get_run(silent).state == "interrupted"
    assert reopened.get_run(waiting).state == "queued"


def test_the_store_reopened_in_another_process_shows_the_same_runs_and_metrics(runner, store):
    run_id = runner.submit(tiny_config(), label="shared", owner="alice")
    run_worker(store.home, once=True)
    script = (
        "import json, sys\n"
        "from mtlcore.runs import RunStore\n"
        "store = RunStore(sys.argv[1])\n"
        "run = store.list_runs()[0]\n"
        "print(json.dumps({'id': run.id, 'label': run.label, 'state': run.state,\n"
        "                  'steps': store.step_metrics(run.id), 'epochs': store.epoch_metrics(run.id)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(store.home)], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout
    seen = json.loads(out)
    assert (seen["id"], seen["label"], seen["state"]) == (run_id, "shared", "finished")
    assert seen["steps"] == store.step_metrics(run_id)
    assert seen["epochs"] == store.epoch_metrics(run_id)


def test_an_unwritable_data_folder_gives_one_clear_sentence(tmp_path):
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("")
    home = not_a_folder / "home"  # fails for root too: a file cannot hold folders
    with pytest.raises(StoreError) as error:
        RunStore(home)
    assert str(error.value) == (
        f"The data folder {home} is not writable; set MTL_HOME to a folder you can write to."
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write to read-only folders")
def test_a_read_only_data_folder_gives_one_clear_sentence(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="is not writable; set MTL_HOME"):
            RunStore(locked / "home")
    finally:
        locked.chmod(0o700)


def test_unknown_runs_and_missing_or_damaged_checkpoints_say_so(runner, store):
    with pytest.raises(StoreError, match="No run with id 'nope'"):
        store.get_run("nope")
    run_id = runner.submit(tiny_config())
    with pytest.raises(StoreError, match=f"No checkpoint yet for run {run_id}: it is written at the end of each epoch"):
        load_checkpoint(store.checkpoint_path(run_id))
    store.run_dir(run_id).mkdir(parents=True)
    store.checkpoint_path(run_id).write_bytes(b"not a checkpoint")
    with pytest.raises(StoreError, match=f"The checkpoint of run {run_id} .* cannot be read"):
        load_checkpoint(store.checkpoint_path(run_id))


def test_the_data_folder_is_MTL_HOME_else_a_folder_in_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "lab"))
    assert default_home() == tmp_path / "lab"
    assert RunStore().home == tmp_path / "lab"
    monkeypatch.delenv("MTL_HOME")
    assert default_home() == Path.home() / ".mtl-lab"


def store_connection(store):
    from mtlcore.runs.database import writing

    return writing(store.db_path)


def test_a_damaged_database_is_named_and_left_alone(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "mtl.sqlite").write_bytes(b"this is not a database, but it is someone's file" * 100)
    with pytest.raises(StoreError, match="is not a readable MTL Lab database"):
        RunStore(home)
    assert (home / "mtl.sqlite").read_bytes().startswith(b"this is not a database")
