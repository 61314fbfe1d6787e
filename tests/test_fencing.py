"""Fencing: a worker that wakes from a long pause cannot write for runs taken away from it.

A worker paused past the heartbeat timeout (SIGSTOP, a laptop lid, a swap
storm) is presumed dead, and its runs are marked interrupted by whoever
looks next. Without fencing it woke up, trained on unseen and finally
wrote ``finished`` over the interruption. The pause is faked here: at a
chosen step the run's heartbeat is made stale and another store object
recovers orphans, exactly what a page load does while the worker sleeps.
"""
import pytest
import torch

from mtlcore.config import ExperimentConfig
from mtlcore.engine import Callback
from mtlcore.runs import ClaimLost, RunStore, run_worker
from mtlcore.runs import callback as callback_module
from mtlcore.runs import worker as worker_module
from mtlcore.runs.store import INTERRUPTED_MESSAGE


def config(**settings) -> ExperimentConfig:
    flat = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 3, "train.max_samples": 200,
            "train.batch_size": 16, "device": "cpu", "model.arch": "hard", **settings}
    return ExperimentConfig.from_flat(flat)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


@pytest.fixture(autouse=True)
def every_step_checks(monkeypatch):
    # The callback reads the store at most every 0.25 s; every step here, so that "stops at once"
    # is a count of steps, not a matter of timing.
    monkeypatch.setattr(callback_module, "FLUSH_EVERY", 0.0)
    monkeypatch.setattr(callback_module, "CANCEL_CHECK_EVERY", 0.0)
    monkeypatch.setattr(worker_module, "HEARTBEAT_EVERY", 3600.0)  # no real beat between the fake pause's steps
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def pause_worker_at(store: RunStore, step: int, run_ids=None):
    """A callback that, at ``step``, does what a long pause leads to: stale heartbeats, then recovery elsewhere."""

    class Pause(Callback):
        steps_after = 0
        recovered: list[str] = []

        def on_step_end(self, run, logs):
            if logs["step"] == step and not Pause.recovered:
                with store_connection(store) as conn:
                    where = "" if run_ids is None else f" AND id IN ({', '.join('?' * len(run_ids))})"
                    conn.execute("UPDATE runs SET heartbeat = heartbeat - 1000, started_at = started_at - 1000 "
                                 "WHERE state = 'running'" + where, list(run_ids or []))
                    conn.execute("UPDATE workers SET heartbeat = heartbeat - 1000")
                Pause.recovered = RunStore(store.home).recover_orphans() or ["?"]
            elif Pause.recovered:
                Pause.steps_after += 1

    return Pause


def store_connection(store):
    from mtlcore.runs.database import writing

    return writing(store.db_path)


def with_extra_callback(monkeypatch, extra: type, target: str) -> None:
    """Make the worker's ``fit`` or ``fit_many`` also call ``extra`` (after the store's own callback)."""
    original = getattr(worker_module, target)
    if target == "fit":
        monkeypatch.setattr(worker_module, "fit",
                            lambda cfg, callbacks=(), device=None: original(cfg, [*callbacks, extra()], device=device))
    else:
        shared = extra()
        monkeypatch.setattr(worker_module, "fit_many", lambda cfgs, callbacks, device=None: original(
            cfgs, [[*cbs, shared] if i == 0 else list(cbs) for i, cbs in enumerate(callbacks)], device=device))


def test_a_paused_worker_that_wakes_after_recovery_stops_and_leaves_its_run_interrupted(store, monkeypatch, capfd):
    run_id = store.add_run(config(), label="long").id
    pause = pause_worker_at(store, step=5)
    with_extra_callback(monkeypatch, pause, "fit")

    run_worker(store.home, once=True)

    run = store.get_run(run_id)
    assert (run.state, run.message) == ("interrupted", INTERRUPTED_MESSAGE), "it must not turn into finished"
    assert run.summary is None and run.progress < 1
    assert pause.steps_after <= 1, "the woken worker stops at its next step"
    assert max(s["step"] for s in store.step_metrics(run_id)) <= 5, "no step written after the claim was lost"
    log = capfd.readouterr().err
    assert log.count("was taken away from this worker") == 1 and "interrupted" in log
    assert "Traceback" not in log


def mlp_config(seed: int) -> ExperimentConfig:
    """A small MLP on synthetic data: packs with others like it (see tests/test_worker_packing.py)."""
    return ExperimentConfig.from_flat({"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.n_samples": 300,
                                       "train.epochs": 3, "train.batch_size": 16, "device": "cpu", "seed": seed})


def test_a_paused_packed_group_stops_every_member_and_none_ends_finished(store, monkeypatch):
    ids = [r.id for r in store.add_runs([mlp_config(s) for s in (1, 2, 3)], ["a", "b", "c"])]
    pause = pause_worker_at(store, step=4)
    with_extra_callback(monkeypatch, pause, "fit_many")

    run_worker(store.home, once=True)

    assert [store.get_run(i).state for i in ids] == ["interrupted"] * 3
    assert all(store.get_run(i).summary is None for i in ids)
    assert pause.steps_after <= 1


def test_one_member_taken_away_stops_alone_and_the_rest_of_its_pack_finishes(store, monkeypatch):
    ids = [r.id for r in store.add_runs([mlp_config(s) for s in (1, 2, 3)], ["a", "b", "c"])]
    pause = pause_worker_at(store, step=4, run_ids=[ids[1]])  # only b's heartbeat goes stale
    with_extra_callback(monkeypatch, pause, "fit_many")

    run_worker(store.home, once=True)

    assert [store.get_run(i).state for i in ids] == ["finished", "interrupted", "finished"]
    assert store.get_run(ids[1]).message == INTERRUPTED_MESSAGE


def test_the_store_refuses_every_write_of_a_claim_that_was_taken_away(store):
    run_id = store.add_run(config()).id
    claimed = store.claim_next("another-host:1")  # on another machine: only its heartbeat speaks for it
    assert claimed.claim
    store.append_steps(run_id, [{"step": 1, "loss": {}}], 0.1, claim=claimed.claim)  # held: accepted
    with store_connection(store) as conn:
        conn.execute("UPDATE runs SET heartbeat = heartbeat - 1000")
    assert store.recover_orphans() == [run_id]

    for write in (lambda: store.append_steps(run_id, [{"step": 2, "loss": {}}], 0.2, claim=claimed.claim),
                  lambda: store.append_epoch(run_id, {"epoch": 1}, claim=claimed.claim),
                  lambda: store.set_device(run_id, "cpu", claim=claimed.claim),
                  lambda: store.finish_run(run_id, "finished", "Done.", {"test": {}}, claim=claimed.claim),
                  lambda: store.cancel_requested(run_id, claimed.claim)):
        with pytest.raises(ClaimLost, match=f"Run {run_id} was taken away from this worker"):
            write()
    assert store.heartbeat("another-host:1", {run_id: claimed.claim}) == [run_id]

    run = store.get_run(run_id)
    assert run.state == "interrupted" and run.summary is None
    assert [s["step"] for s in store.step_metrics(run_id)] == [1] and store.epoch_metrics(run_id) == []


def test_a_run_claimed_again_gets_a_new_claim_and_the_old_one_stays_refused(store):
    run_id = store.add_run(config()).id
    first = store.claim_next("another-host:1")
    with store_connection(store) as conn:  # its owner re-queues it after the interruption
        conn.execute("UPDATE runs SET state = 'queued', claim = NULL WHERE id = ?", (run_id,))
    second = store.claim_next("another-host:2")
    assert second.claim != first.claim
    with pytest.raises(ClaimLost):
        store.append_steps(run_id, [{"step": 1}], claim=first.claim)
    store.append_steps(run_id, [{"step": 1}], claim=second.claim)


def test_the_heartbeat_stops_beating_for_runs_taken_away(store):
    run_id = store.add_run(config()).id
    held = store.claim_next("another-host:1")
    with store_connection(store) as conn:
        conn.execute("UPDATE runs SET heartbeat = heartbeat - 1000")
    RunStore(store.home).recover_orphans()
    beat = worker_module._Heartbeat(store, "another-host:1")
    beat.runs = {run_id: held.claim}

    beat.beat_once()

    assert beat.runs == {}
    assert store.get_run(run_id).state == "interrupted"
