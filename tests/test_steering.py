"""Live steering: a running run takes new loss weights and learning rates, pauses and resumes, forks.

The worker's SteeringCallback reads the changes people write into the store
(mtlcore.runs.steering) between two steps. Here it looks before every step
(``poll_every=0``) and a small callback writes a request at a chosen step,
so the step at which a change acts is exact.
"""
import os
import threading
import time

import pytest
import torch

from mtlcore.config import ExperimentConfig
from mtlcore.engine import Callback, TrainingRun, fit
from mtlcore.owners import Owner
from mtlcore.runs import NotOwnerError, Runner, RunStore, StoreError
from mtlcore.runs import steering
from mtlcore.runs.processes import host_name
from mtlcore.runs.steering_callback import SteeringCallback

from helpers import wait_for  # noqa: E402

ALICE = Owner.from_key("alice", "alice-private-key-0123456789")
MALLORY = Owner.from_key("mallory", "mallory-private-key-0123456789")


def config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 400, "train.epochs": 3, "train.max_samples": 256,
            "train.batch_size": 32, "tasks": "shape,color", "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


def running_run(store: RunStore, cfg: ExperimentConfig, owner=ALICE):
    """A run in the store as a worker holds it: claimed, state running."""
    store.add_run(cfg, "steered", owner)
    return store.claim_next(f"{host_name()}:{os.getpid()}")  # this process: alive, so never taken for dead


class At(Callback):
    """Does ``action`` once, just before training step ``step + 1`` (i.e. after ``step`` steps)."""

    def __init__(self, step: int, action):
        self.step, self.action, self.done = step, action, False

    def on_step_begin(self, run):
        if not self.done and run.step == self.step:
            self.done = True
            self.action()


class Steps(Callback):
    """Keeps every step log."""

    def __init__(self):
        self.logs = []

    def on_step_end(self, run, logs):
        self.logs.append(logs)


def test_a_steered_weight_changes_the_tasks_loss_trend_and_is_stored_with_its_step(tmp_path):
    store = RunStore(tmp_path / "home")
    cfg = config()
    record = running_run(store, cfg)
    alone, steered = Steps(), Steps()
    fit(cfg, [alone])
    change = At(4, lambda: steering.steer(store, record.id, "loss.weights.color", 0.0, by=ALICE))
    result = fit(cfg, [change, SteeringCallback(store, record.id, record.claim, poll_every=0), steered])

    # The change acts from step 5: the logged weight says so, and color stops being learned.
    assert [s["weight"]["color"] for s in steered.logs[:4]] == [1.0] * 4
    assert all(s["weight"]["color"] == 0.0 for s in steered.logs[4:])
    assert all(s["weight"]["shape"] == 1.0 for s in steered.logs)
    late = slice(len(steered.logs) // 2, None)
    mean = lambda logs: sum(s["loss"]["color"] for s in logs[late]) / len(logs[late])  # noqa: E731
    assert mean(steered.logs) > mean(alone.logs) * 1.2
    # The event is stored with the step it acted from, and the summary keeps the history.
    [event] = steering.applied(store, record.id)
    assert (event.key, event.value, event.step, event.by) == ("loss.weights.color", 0.0, 4, "alice")
    assert result.summary["steering"][0]["step"] == 4
    assert result.summary["final_weights"] == {"shape": 1.0, "color": 0.0}


def test_a_steered_learning_rate_reaches_the_optimiser(tmp_path):
    store = RunStore(tmp_path / "home")
    cfg = config(**{"train.epochs": 1})
    record = running_run(store, cfg)
    seen = []
    change = At(2, lambda: steering.steer(store, record.id, "optim.lr", 0.0001, by=ALICE))
    look = At(3, lambda: None)
    look.on_step_begin = lambda run: seen.append(run.optimizer.param_groups[0]["lr"])
    result = fit(cfg, [change, SteeringCallback(store, record.id, record.claim, poll_every=0), look])
    assert seen[:2] == [cfg.optim.lr] * 2 and set(seen[2:]) == {0.0001}
    assert result.summary["final_lr"] == 0.0001


def test_pause_holds_the_step_count_and_resume_continues(tmp_path):
    store = RunStore(tmp_path / "home")
    cfg = config(**{"train.epochs": 1})
    record = running_run(store, cfg)
    logs = Steps()
    hold = At(3, lambda: steering.pause(store, record.id, by=ALICE))
    results = []
    thread = threading.Thread(target=lambda: results.append(
        fit(cfg, [hold, SteeringCallback(store, record.id, record.claim, poll_every=0), logs])))
    thread.start()
    try:
        wait_for(lambda: store.get_run(record.id).message, "the run to say it is paused")
        assert steering.is_paused(store, record.id)
        assert store.get_run(record.id).message == "Paused at step 3; resume to continue."
        time.sleep(0.5)  # the worker holds it: no step is trained meanwhile
        assert len(logs.logs) == 3
        # A weight moved while paused is taken before the next step.
        steering.steer(store, record.id, "loss.weights.shape", 2.0, by=ALICE)
        steering.resume(store, record.id, by=ALICE)
    finally:
        thread.join(timeout=60)
    [result] = results
    assert result.status == "finished" and result.run.step == result.run.total_steps
    assert logs.logs[3]["weight"]["shape"] == 2.0
    assert [(e.key, e.step) for e in steering.applied(store, record.id)] == [
        ("pause", 3), ("loss.weights.shape", 3), ("resume", 3)]
    assert not steering.is_paused(store, record.id)
    assert store.get_run(record.id).message == ""


def test_a_paused_run_can_still_be_stopped(tmp_path):
    store = RunStore(tmp_path / "home")
    cfg = config(**{"train.epochs": 1})
    record = running_run(store, cfg)
    stop = threading.Event()
    hold = At(2, lambda: steering.pause(store, record.id, by=ALICE))
    callback = SteeringCallback(store, record.id, record.claim, poll_every=0, stopping=stop.is_set)

    class Stop(Callback):
        def should_stop(self):
            return stop.is_set()

    results = []
    thread = threading.Thread(target=lambda: results.append(fit(cfg, [hold, callback, Stop()])))
    thread.start()
    wait_for(lambda: steering.is_paused(store, record.id), "the run to pause")
    stop.set()
    thread.join(timeout=60)
    assert results[0].status == "cancelled" and results[0].run.step == 2


def test_a_stranger_cannot_steer_pause_or_fork_someone_elses_run(tmp_path):
    store = RunStore(tmp_path / "home")
    record = running_run(store, config())
    for ask in (lambda: steering.steer(store, record.id, "loss.weights.color", 0.0, by=MALLORY),
                lambda: steering.pause(store, record.id, by=MALLORY),
                lambda: steering.resume(store, record.id, by=MALLORY),
                lambda: steering.fork(Runner(store, max_workers=0), record.id, {}, by=MALLORY)):
        with pytest.raises(NotOwnerError, match="Only alice can"):
            ask()
    assert steering.events(store, record.id) == []  # nothing was written
    assert steering.steer(store, record.id, "loss.weights.color", 0.5, by=Owner.machine())  # the command line may


def test_bad_requests_get_one_sentence_and_store_nothing(tmp_path):
    store = RunStore(tmp_path / "home")
    record = running_run(store, config())
    learned = running_run(store, config(**{"weighting.method": "uncertainty"}))
    cases = [
        (record.id, "loss.weights.size", 1.0, "has no task 'size'"),
        (record.id, "loss.weights.color", -1.0, "from 0 to 100"),
        (record.id, "optim.lr", 0.0, "above 0"),
        (record.id, "train.epochs", 5.0, "can be steered by"),
        (learned.id, "loss.weights.color", 2.0, "uncertainty chooses the task weights itself"),
    ]
    for run_id, key, value, words in cases:
        with pytest.raises(ValueError, match=words):
            steering.steer(store, run_id, key, value, by=ALICE)
    assert steering.events(store, record.id) == [] and steering.events(store, learned.id) == []
    # ... and a learned method may still have its learning rate steered.
    assert "from its next step" in steering.steer(store, learned.id, "optim.lr", 0.001, by=ALICE)
    store.finish_run(record.id, "finished", claim=record.claim)
    with pytest.raises(StoreError, match="only a running run can be steered"):
        steering.steer(store, record.id, "loss.weights.color", 1.0, by=ALICE)
    with pytest.raises(StoreError, match="only a running run can be paused"):
        steering.pause(store, record.id, by=ALICE)


def test_a_packed_member_takes_weights_but_not_a_learning_rate_or_a_pause(tmp_path):
    store = RunStore(tmp_path / "home")
    record = running_run(store, config())
    callback = SteeringCallback(store, record.id, record.claim, packed=3, poll_every=0)
    run = TrainingRun.create(config())
    callback.on_fit_start(run)
    with pytest.raises(ValueError, match="packed with 2 other runs"):
        steering.steer(store, record.id, "optim.lr", 0.01, by=ALICE)
    steering.steer(store, record.id, "loss.weights.color", 3.0, by=ALICE)
    callback.on_step_begin(run)
    assert run.weighting.user_weights["color"] == 3.0


def test_fork_starts_from_the_parents_weights_with_other_settings(tmp_path):
    store = RunStore(tmp_path / "home")
    runner = Runner(store, max_workers=0)
    cfg = config(**{"train.epochs": 1})
    record = running_run(store, cfg)
    from mtlcore.runs.callback import StoreCallback

    parent = fit(cfg, [StoreCallback(store, record.id, claim=record.claim)])  # saves its checkpoint
    child_id = steering.fork(runner, record.id, {"optim.lr": "0.0003", "loss.weights.color": "0"}, by=ALICE)

    child = store.get_run(child_id)
    assert child.state == "queued" and child.owner == "alice"
    assert child.config.optim.lr == 0.0003 and child.config.loss.weights["color"] == 0.0
    assert steering.fork_parent(store, child_id) == (record.id, parent.run.step)
    start = TrainingRun.create(child.config)  # before its first step: the parent's trained weights
    fresh = TrainingRun.create(cfg)
    for name, value in parent.run.model.state_dict().items():
        assert torch.equal(start.model.state_dict()[name], value), name
    assert any(not torch.equal(fresh.model.state_dict()[n], v) for n, v in parent.run.model.state_dict().items())
    with pytest.raises(ValueError, match="cannot change tasks"):
        steering.fork(runner, record.id, {"tasks": "shape"}, by=ALICE)


def test_steering_reaches_a_member_of_a_packed_group_alone(tmp_path):
    from mtlcore.packed import fit_packed

    store = RunStore(tmp_path / "home")
    flat = {"dataset.name": "synthetic", "dataset.n_samples": 400, "train.epochs": 1, "train.max_samples": 256,
            "train.batch_size": 32, "tasks": "task_a,task_b", "device": "cpu"}
    a, b = ExperimentConfig.from_flat(flat), ExperimentConfig.from_flat({**flat, "seed": 1})
    record = running_run(store, a)
    steered, other = Steps(), Steps()
    change = At(3, lambda: steering.steer(store, record.id, "loss.weights.task_b", 0.0, by=ALICE))
    fit_packed([a, b], [[change, SteeringCallback(store, record.id, record.claim, packed=2, poll_every=0), steered],
                        [other]])
    assert [s["weight"]["task_b"] for s in steered.logs[:3]] == [1.0] * 3
    assert all(s["weight"]["task_b"] == 0.0 for s in steered.logs[3:])
    assert all(s["weight"]["task_b"] == 1.0 for s in other.logs)  # its partner is not steered
    assert [(e.key, e.step) for e in steering.applied(store, record.id)] == [("packed", 0), ("loss.weights.task_b", 3)]


def test_the_command_line_steers_pauses_and_forks_as_the_machines_user(tmp_path, capsys):
    from mtlcore.cli import main

    store = RunStore(tmp_path / "home")
    record = running_run(store, config())
    home = ["--home", str(tmp_path / "home")]
    assert main(["steer", record.id, "--set", "loss.weights.color=2", "--set", "optim.lr=0.001", *home]) == 0
    assert main(["pause", record.id, *home]) == 0
    assert [(e.key, e.value, e.by) for e in steering.events(store, record.id)] == [
        ("loss.weights.color", 2.0, "the machine's user (command line)"),
        ("optim.lr", 0.001, "the machine's user (command line)"), ("pause", None, "the machine's user (command line)")]
    assert main(["steer", record.id, "--set", "loss.weights.color=lots", *home]) != 0
    assert main(["fork", record.id, *home]) != 0  # no saved weights yet: one sentence
    assert "fork it after its first epoch" in capsys.readouterr().err


def test_a_forks_standalone_script_is_refused_in_one_sentence():
    from mtlcore.export.script import script_problem

    assert script_problem(config()) is None
    assert "this run is a fork" in script_problem(config(**{"train.init_from": "/somewhere/step-40.pt"}))
