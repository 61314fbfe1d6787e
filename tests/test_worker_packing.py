"""Background workers train small queued runs together, packed, and each run still ends as if alone.

Packable runs here are small MLPs on the synthetic dataset (stacking pays on
a CPU for them); a run with learned loss weights (``uncertainty``) never
packs. Most tests run the worker in this process; one kills a real worker
process in the middle of a group.
"""
import os
import signal
import threading
from dataclasses import replace

import pytest
import torch

from mtlcore.config import ExperimentConfig
from mtlcore.packing import grouping  # where MAX_PACKED_RUNS lives
from mtlcore.runs import QueueFullError, Runner, RunStore, run_worker
from mtlcore.runs import runner as runner_module
from mtlcore.runs import worker as worker_module
from mtlcore.runs.database import reading
from mtlcore.runs.processes import host_name
from mtlcore.runs.worker import claim_partners, train_group
from mtlcore.studies import StudySpec, StudyStore, advance_studies, default_base, run_study

from helpers import wait_for  # noqa: E402


def mlp_config(**settings) -> ExperimentConfig:
    """A few-second-or-less run of a small MLP: packable with others like it."""
    flat = {"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.n_samples": 300, "train.epochs": 2,
            "device": "cpu", **settings}
    return ExperimentConfig.from_flat(flat)


def baseline_of(config: ExperimentConfig, task: str) -> ExperimentConfig:
    return replace(config, tasks=(task,), model=replace(config.model, arch="single"))


def slow_config(epochs: int, **settings) -> ExperimentConfig:
    """Many small steps, so that a test can act while the group trains."""
    return mlp_config(**{"dataset.n_samples": 1000, "train.batch_size": 8, "train.epochs": epochs, **settings})


@pytest.fixture
def runner(tmp_path):
    # No worker process: tests run the worker in this process (never stop_workers here: it would stop pytest).
    return Runner(RunStore(tmp_path / "home"), max_workers=0, queue_cap_per_owner=100)


def test_a_worker_trains_packable_queued_runs_together_and_each_keeps_its_own_results(runner):
    store = runner.store
    multi = mlp_config()
    packable = [runner.submit(multi, owner="alice"), runner.submit(replace(multi, seed=1), owner="bob"),
                runner.submit(baseline_of(multi, "task_a"), owner="carol")]
    alone = runner.submit(mlp_config(**{"weighting.method": "uncertainty"}), owner="dave")
    packable.append(runner.submit(baseline_of(multi, "task_b"), owner="erin"))  # queued after the lone run

    assert run_worker(store.home, idle_exit=0) == 5

    for run_id in packable:
        run = store.get_run(run_id)
        assert run.state == "finished" and run.progress == 1.0
        assert run.summary["packed"] == 4  # trained as one group of four
        assert set(run.summary["test"]) == set(run.config.tasks)  # its own tasks' metrics
        assert len(store.epoch_metrics(run_id)) == 2 and store.step_metrics(run_id)
        checkpoint = torch.load(store.checkpoint_path(run_id), weights_only=True)
        assert checkpoint["epoch"] == 2
    lone = store.get_run(alone)
    assert lone.state == "finished" and "packed" not in lone.summary  # trained alone with fit, as before
    assert lone.started_at >= max(store.get_run(r).finished_at for r in packable)
    assert len(store.epoch_metrics(alone)) == 2 and store.checkpoint_path(alone).exists()
    # Two members with different seeds learned different weights.
    first, second = (store.get_run(r).summary["test"]["task_a"]["mae"] for r in packable[:2])
    assert first != second


def test_cancelling_one_member_of_a_running_group_leaves_the_others_to_finish(runner):
    store = runner.store
    ids = [runner.submit(slow_config(6, seed=seed), owner=f"p{seed}") for seed in range(3)]
    worker = threading.Thread(target=run_worker, args=(store.home,), kwargs={"idle_exit": 0})
    worker.start()
    try:
        wait_for(lambda: store.step_metrics(ids[1]), "the group's first logged step")
        assert "stopping" in runner.cancel(ids[1])
    finally:
        worker.join(timeout=120)  # it returns once the queue is empty

    cancelled = store.get_run(ids[1])
    assert cancelled.state == "cancelled" and cancelled.message.startswith("Cancelled at step")
    assert store.step_metrics(ids[1]) and cancelled.summary["status"] == "cancelled"  # what it logged is kept
    for run_id in (ids[0], ids[2]):
        run = store.get_run(run_id)
        assert run.state == "finished" and run.summary["packed"] == 3
        assert run.summary["steps"] > cancelled.summary["steps"]
        assert len(store.epoch_metrics(run_id)) == 6


def claimed_group(store: RunStore, worker: str):
    lead = store.claim_next(worker)
    return [lead, *claim_partners(store, worker, lead)]


def test_a_cancelled_member_ends_at_once_and_a_shutdown_interrupts_the_rest(runner):
    store = runner.store
    for seed in range(3):
        runner.submit(slow_config(1000, seed=seed), owner=f"p{seed}")
    group = claimed_group(store, f"{host_name()}:{os.getpid()}")
    assert len(group) == 3
    shutdown = threading.Event()
    states = []
    training = threading.Thread(target=lambda: states.extend(train_group(store, group, shutdown)))
    training.start()
    try:
        wait_for(lambda: all(store.step_metrics(r.id) for r in group), "every member's first logged step")
        runner.cancel(group[0].id)
        # The member shows as cancelled (and leaves its owner's queue) while its group trains on.
        wait_for(lambda: store.get_run(group[0].id).state == "cancelled", "the member to end")
        assert [store.get_run(r.id).state for r in group[1:]] == ["running", "running"]
    finally:
        shutdown.set()  # what SIGTERM does in a worker process
        training.join(timeout=60)
    assert states == ["cancelled", "interrupted", "interrupted"]  # the owner's cancel stays a cancel
    assert "shut down" in store.get_run(group[1].id).message
    assert store.get_run(group[0].id).summary["status"] == "cancelled"


class _Trigger:
    """A callback whose ``should_stop`` runs ``act`` (and never stops its member itself)."""

    def __init__(self, act=None, at_epoch_end=None):
        self.act, self.at_epoch_end = act, at_epoch_end

    def on_fit_start(self, run): ...

    def on_step_end(self, run, logs): ...

    def on_epoch_end(self, run, logs):
        if self.at_epoch_end is not None:
            self.at_epoch_end()

    def on_fit_end(self, run, result): ...

    def should_stop(self):
        if self.act is not None:
            self.act()
        return False


def test_a_cancel_then_a_shutdown_in_the_same_step_still_stores_every_members_summary(runner, monkeypatch):
    # The cancelled member's summary used to be lost when every member stopped on an epoch's first step.
    from mtlcore.runs import callback as callback_module

    monkeypatch.setattr(callback_module, "CANCEL_CHECK_EVERY", 0.0)  # the cancel is seen on the next step
    store = runner.store
    for seed in range(3):
        runner.submit(mlp_config(seed=seed), owner=f"p{seed}")
    group = claimed_group(store, f"{host_name()}:{os.getpid()}")
    shutdown = threading.Event()
    first = group[0].id

    def shut_down_once_cancelled():
        if store.get_run(first).state == "cancelled":
            shutdown.set()  # what SIGTERM does, in the very step that saw the cancel

    real_fit_many = worker_module.fit_many

    def fit_many_with_triggers(configs, callbacks, device=None):
        # Member 0 is cancelled at the end of epoch 1, so it stops on epoch 2's first step, and the
        # others see the shutdown in that same step: every member stops before the epoch's first step.
        callbacks = [[_Trigger(at_epoch_end=lambda: store.cancel_run(first)), *callbacks[0]],
                     *[[_Trigger(act=shut_down_once_cancelled), *cbs] for cbs in callbacks[1:]]]
        return real_fit_many(configs, callbacks, device=device)

    monkeypatch.setattr(worker_module, "fit_many", fit_many_with_triggers)
    states = train_group(store, group, shutdown)
    assert states == ["cancelled", "interrupted", "interrupted"]
    for record in group:
        summary = store.get_run(record.id).summary
        assert summary["status"] == "cancelled" and set(summary["test"]) == {"task_a", "task_b"}
    assert store.get_run(first).message.startswith("Cancelled at step")


def test_when_a_packed_group_fails_its_members_are_trained_one_by_one(runner, monkeypatch):
    def broken_fit_many(configs, callbacks=None, device=None):
        raise RuntimeError("the stacked model did not fit in memory")

    monkeypatch.setattr(worker_module, "fit_many", broken_fit_many)
    ids = [runner.submit(mlp_config(seed=seed), owner=f"p{seed}") for seed in range(3)]
    assert run_worker(runner.store.home, once=True) == 3  # one group, claimed together
    for run_id in ids:
        run = runner.store.get_run(run_id)
        assert run.state == "finished" and "packed" not in run.summary  # each trained alone instead


def test_two_workers_never_claim_the_same_run(runner, monkeypatch):
    monkeypatch.setattr(grouping, "MAX_PACKED_RUNS", 3)  # small groups: many claims race
    store = runner.store
    ids = [runner.submit(mlp_config(seed=i % 4, **({"weighting.method": "uncertainty"} if i % 5 == 4 else {})),
                         owner=f"s{i}") for i in range(15)]
    workers = [f"{host_name()}:{i + 1}" for i in range(4)]
    claims: list[tuple[str, str]] = []

    # A run that another worker took after this one chose it as a partner is left out, not taken twice.
    lead = store.claim_next(workers[0])
    taken = store.claim_runs(workers[1], ids[1:3])
    assert [r.id for r in taken] == ids[1:3] and store.claim_runs(workers[0], ids[1:3]) == []
    partners = claim_partners(store, workers[0], lead)
    assert len(partners) == 2 and not {r.id for r in partners} & set(ids[1:3])
    claims += [(workers[0], r.id) for r in (lead, *partners)] + [(workers[1], r.id) for r in taken]

    sizes: list[int] = []

    def work(worker: str):
        while (lead := store.claim_next(worker)) is not None:
            group = [lead, *claim_partners(store, worker, lead)]
            sizes.append(len(group))
            claims.extend((worker, run.id) for run in group)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run_id for _, run_id in claims) == sorted(ids)  # each exactly once
    assert all(store.get_run(run_id).worker == worker for worker, run_id in claims)
    assert all(store.get_run(run_id).state == "running" for run_id in ids)
    assert max(sizes) <= 3


def heartbeats(store: RunStore, run_ids) -> list[float]:
    with reading(store.db_path) as conn:
        return [conn.execute("SELECT heartbeat FROM runs WHERE id = ?", (i,)).fetchone()[0] for i in run_ids]


def test_a_worker_killed_mid_group_leaves_every_member_interrupted(tmp_path):
    runner = Runner(RunStore(tmp_path / "home"), max_workers=1, queue_cap_per_owner=100)
    store = runner.store
    try:
        ids = [runner.submit(slow_config(1000, seed=seed), owner="alice") for seed in range(3)]
        runner.ensure_workers()
        wait_for(lambda: all(store.step_metrics(i) for i in ids), "every member's first logged step")
        started = max(store.get_run(i).started_at for i in ids)
        # The worker beats for each of its runs, not only the first.
        wait_for(lambda: min(heartbeats(store, ids)) > started, "a heartbeat for every member")
        (worker,) = store.live_workers()
        assert {store.get_run(i).worker for i in ids} == {worker["id"]}

        os.kill(worker["pid"], signal.SIGKILL)
        wait_for(lambda: not store.live_workers(), "the worker to be gone")
        reopened = RunStore(store.home)  # e.g. the app restarting
        assert [reopened.get_run(i).state for i in ids] == ["interrupted"] * 3
        assert all(reopened.step_metrics(i) for i in ids)  # what they logged is kept
    finally:
        runner.stop_workers(timeout=5)


def test_a_study_queues_its_packable_members_in_batches_that_one_worker_trains_packed(tmp_path, monkeypatch):
    monkeypatch.setattr(grouping, "MAX_PACKED_RUNS", 6)
    runner = Runner(RunStore(tmp_path / "home"), max_workers=0)  # the usual cap: 3 per person
    store, studies = runner.store, StudyStore(runner.store)
    base = ExperimentConfig.from_flat({"dataset.n_samples": 300, "train.epochs": 2, "device": "cpu"},
                                      base=default_base("relatedness"))
    spec = StudySpec("relatedness", base, seeds=2, correlations=(1.0, 0.0), archs=("hard",))

    record = studies.start(spec, runner, owner="alice")
    assert record.total == 12
    # One batch of packable members is queued whole, beyond the cap of 3 ...
    assert len(store.list_runs(study_id=record.id, states=("queued",))) == 6
    # ... and counts by its size: nothing more of Alice's until it has trained.
    with pytest.raises(QueueFullError):
        runner.submit(mlp_config(), owner="alice")
    assert runner.submit(mlp_config(**{"weighting.method": "uncertainty"}), owner="bob")  # others still can

    # The worker, given the studies' hook as `python -m mtlcore worker` gives it, queues the next batch itself.
    assert run_worker(store.home, idle_exit=0, after_each_run=[advance_studies]) == 13
    done = studies.get(record.id)
    assert done.state == "finished" and done.progress_text == "12 of 12 runs done"
    assert all(m.summary["packed"] >= 6 for m in done.members)  # in groups, never one by one

    result = studies.result(record.id)
    assert result["progress"] == {"done": 12, "total": 12, "with_result": 12}
    # The same study trained in the foreground (the command line's path) reports the same numbers.
    local = run_study(replace(spec, reuse=False), report=lambda line: None)
    for row, expected in zip(result["result"]["rows"], local["result"]["rows"], strict=True):
        assert (row["correlation"], row["arch"]) == (expected["correlation"], expected["arch"])
        assert row["benefit"]["mean"] == pytest.approx(expected["benefit"]["mean"], rel=1e-3, abs=1e-3)
