"""Background runs in worker processes, as the app and the command line use them.

Workers here are real processes (``python -m mtlcore worker``); each test's
fixture stops them, whatever happens.
"""
import argparse
import json
import os
import signal
import threading

import pytest
import torch

from mtlcore.cli import runs as runs_cli
from mtlcore.cli.common import run_guarded
from mtlcore.config import ExperimentConfig
from mtlcore.runs import Runner, RunStore

from helpers import wait_for  # noqa: E402


def tiny_config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 1,
            "train.max_samples": 200, "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


def long_config() -> ExperimentConfig:
    """Runs for minutes unless stopped: for tests that act while a run is training."""
    return tiny_config(**{"train.epochs": 1000, "train.batch_size": 8})


@pytest.fixture
def runner(tmp_path):
    runner = Runner(RunStore(tmp_path / "home"), max_workers=1)
    yield runner
    runner.stop_workers(timeout=5)


@pytest.fixture(scope="module")
def warm_runner(tmp_path_factory):
    """One data folder and worker shared by several tests, as in class: the worker stays warm between runs."""
    runner = Runner(RunStore(tmp_path_factory.mktemp("warm") / "home"), max_workers=1)
    runner.ensure_workers()
    yield runner
    runner.stop_workers(timeout=5)


def test_pages_calling_ensure_workers_at_once_start_a_single_worker(runner):
    # Four page loads at the same moment, each session with its own runner.
    sessions = [runner] + [Runner(RunStore(runner.store.home), max_workers=1) for _ in range(3)]
    started = []
    threads = [threading.Thread(target=lambda r=r: started.append(r.ensure_workers())) for r in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(started) == [0, 0, 0, 1]
    assert runner.ensure_workers() == 0  # and later page loads add none
    assert len(runner.store.live_workers()) == 1


def test_a_background_worker_trains_submitted_runs_in_order(warm_runner):
    runner, store = warm_runner, warm_runner.store
    first = runner.submit(tiny_config(**{"train.epochs": 3}), label="first", owner="alice")
    second = runner.submit(tiny_config(), label="second", owner="bob")
    assert store.get_run(first).state in ("queued", "running")

    states = set()
    wait_for(lambda: states.add(store.get_run(first).state) or store.get_run(second).state == "finished",
             "both runs to finish")
    assert "running" in states
    run = store.get_run(first)
    assert run.state == "finished" and run.progress == 1.0
    assert store.get_run(second).started_at >= run.finished_at  # one after the other, oldest first
    assert len(store.step_metrics(first)) > 0 and len(store.epoch_metrics(first)) == 3
    checkpoint = torch.load(store.checkpoint_path(first), weights_only=True)
    assert checkpoint["epoch"] == 3
    assert len(store.live_workers()) == 1  # the worker stays warm for the next run


def test_cancel_stops_a_running_run_keeping_its_metrics_and_drops_a_queued_one(warm_runner):
    runner, store = warm_runner, warm_runner.store
    running = runner.submit(long_config(), label="long")
    waiting = runner.submit(tiny_config(), label="waiting")
    wait_for(lambda: store.step_metrics(running), "the first logged step")

    assert "cancelled" in runner.cancel(waiting)
    assert store.get_run(waiting).state == "cancelled"  # at once, no worker involved
    assert "stopping" in runner.cancel(running)
    run = wait_for(lambda: (r := store.get_run(running)).state == "cancelled" and r, "the run to stop")

    assert run.message.startswith("Cancelled at step")
    assert store.step_metrics(running)  # kept
    assert store.get_run(waiting).started_at is None
    assert len(store.live_workers()) == 1  # the worker survives a cancel


def test_a_killed_worker_leaves_its_run_interrupted_and_the_next_run_still_trains(warm_runner):
    runner, store = warm_runner, warm_runner.store
    runner.ensure_workers()
    doomed = runner.submit(long_config(), label="doomed")
    following = runner.submit(tiny_config(), label="following")
    wait_for(lambda: store.step_metrics(doomed), "the first logged step")
    (worker,) = store.live_workers()

    os.kill(worker["pid"], signal.SIGKILL)
    wait_for(lambda: not store.live_workers(), "the worker to be gone")

    reopened = RunStore(store.home)  # e.g. the app restarting
    assert reopened.get_run(doomed).state == "interrupted"
    assert reopened.get_run(doomed).message
    assert reopened.step_metrics(doomed)  # what it logged is kept
    assert reopened.get_run(following).state == "queued"
    assert runner.ensure_workers() == 1  # a new worker takes over
    wait_for(lambda: store.get_run(following).state == "finished", "the next run to finish")


def test_the_command_line_submits_lists_and_cancels(tmp_path, capsys):
    home = str(tmp_path / "home")

    def cli(*argv):
        parser = argparse.ArgumentParser()
        runs_cli.register(parser.add_subparsers())
        args = parser.parse_args(list(argv) + ["--home", home])
        code = run_guarded(args.func, args)
        return code, capsys.readouterr()

    code, out = cli("submit", "--set", "dataset.name=digits", "--set", "tasks=digit,parity", "--label", "cli run")
    run_id = out.out.strip()
    assert code == 0 and len(run_id.split()) == 1
    assert "No worker is running" in out.err

    code, out = cli("runs", "--json")
    (listed,) = json.loads(out.out)
    assert {k: listed[k] for k in ("id", "label", "state", "owner")} == {
        "id": run_id, "label": "cli run", "state": "queued", "owner": "anonymous"}
    assert {"message", "progress", "created_at"} <= set(listed)

    code, out = cli("runs")
    header, row = out.out.splitlines()
    assert header.split()[:4] == ["ID", "LABEL", "OWNER", "STATE"] and row.startswith(run_id)
    assert row.index("queued") == header.index("STATE")  # aligned

    code, out = cli("cancel", run_id, "--owner", "mallory")
    assert code == 2 and "Only anonymous can stop this run." in out.err
    code, out = cli("cancel", run_id)
    assert code == 0 and "cancelled" in out.out
    code, out = cli("cancel", "no-such-run")
    assert code == 2 and "No run with id 'no-such-run'" in out.err
    code, out = cli("submit", "--set", "tasks=shape,flavour", "--label", "bad")
    assert code == 2 and "flavour" in out.err
