"""The Train page's steering controls (Streamlit's AppTest, no browser, no worker).

A run is put in the store as a worker would hold it (claimed by this test
process, which beats for it), so the page shows it running. Moving a slider
must write a request into the store, not train anything; the curves carry a
marker where a change took effect; only the run's owner sees the controls.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore.config import ExperimentConfig
from mtlcore.owners import Owner
from mtlcore.runs import RunStore, steering
from mtlcore.runs.processes import host_name

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ALICE_KEY = "alice-browser-key-0123456789"
TINY = {"dataset.name": "shapes", "tasks": "shape,color", "dataset.n_samples": 300, "train.epochs": 1,
        "train.max_samples": 100, "device": "cpu"}


@pytest.fixture
def running(tmp_path, monkeypatch):
    """A data folder with one of alice's runs running (held by this process) and a few logged steps."""
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MTL_WORKERS", "0")  # no worker: nothing trains, the page only reads and writes the store
    st.cache_resource.clear()
    store = RunStore(tmp_path / "home")
    store.add_run(ExperimentConfig.from_flat(TINY), "steer me", Owner.from_key("alice", ALICE_KEY))
    worker = f"{host_name()}:{os.getpid()}"
    store.register_worker(worker, os.getpid())
    record = store.claim_next(worker)
    store.append_steps(record.id, [{"step": s, "epoch": 1, "progress": s / 10, "loss": {"shape": 1 / s, "color": 1 / s},
                                    "weight": {"shape": 1.0, "color": 1.0}, "t": float(s)} for s in range(1, 6)],
                       0.5, claim=record.claim)
    beating = threading.Event()

    def beat():  # as the worker's heartbeat thread: on a loaded machine a page run may take longer than 30 s
        while not beating.wait(1.0):
            store.heartbeat(worker, {run.id: run.claim for run in store.list_runs(states=["running"])})

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    yield store, record, worker
    beating.set()
    thread.join(timeout=10)
    st.cache_resource.clear()


def open_train(run_id: str, name: str, key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["owner"] = name
    at.session_state["owner_key"] = key
    at.query_params.update({"run": run_id})
    at.run()
    at.switch_page("views/train.py").run()
    assert not at.exception, at.exception
    return at


def test_moving_a_steering_slider_writes_the_change_for_the_worker_and_marks_the_curve(running):
    store, record, worker = running
    at = open_train(record.id, "alice", ALICE_KEY)
    key = f"train_steer__{record.id}__loss_weights_color"
    slider = at.slider(key=key)
    assert slider.value == 1.0
    assert "next step" in slider.help
    slider.set_value(0.0).run()
    assert not at.exception, at.exception
    [event] = steering.events(store, record.id)
    assert (event.key, event.value, event.by, event.step) == ("loss.weights.color", 0.0, "alice", None)

    # The worker takes it before step 6; the live loss chart then shows where.
    steering.mark_applied(store, record.id, [event.seq], 5)
    store.heartbeat(worker, {record.id: record.claim})
    at.run()
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    labels = [a.get("text") for chart in charts for a in chart["layout"].get("annotations", [])]
    assert "color ×0" in labels
    assert at.slider(key=key).value == 0.0

    at.button(key="train_pause").click().run()
    pause = steering.events(store, record.id)[-1]
    assert pause.key == "pause"
    steering.mark_applied(store, record.id, [pause.seq], 5)  # the worker holds it: the panel says "paused"
    store.heartbeat(worker, {record.id: record.claim})
    at.run()
    assert "⏸ paused" in at.get("progress")[0].proto.text
    assert at.button(key="train_resume")


def test_someone_else_sees_who_may_steer_and_no_controls(running):
    store, record, _ = running
    at = open_train(record.id, "mallory", "mallory-browser-key-0123456789")
    assert not [s for s in at.slider if (s.key or "").startswith("train_steer__")]
    assert any("Only alice" in c.value for c in at.caption)
    assert steering.events(store, record.id) == []


def test_compare_draws_a_fork_from_its_parents_step_with_the_branch_marked(running):
    store, parent, worker = running
    store.add_run(ExperimentConfig.from_flat(TINY), "the fork", Owner.from_key("alice", ALICE_KEY))
    child = store.claim_next(worker)
    steering.record(store, child.id, steering.FORKED_FROM, 5.0, text=parent.id)
    store.append_steps(child.id, [{"step": s, "epoch": 1, "progress": s / 10, "loss": {"shape": 0.1, "color": 0.1},
                                   "weight": {"shape": 1.0, "color": 1.0}, "t": float(s)} for s in range(1, 4)],
                       0.3, claim=child.claim)
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["owner"] = "alice"
    at.run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    assert set(at.multiselect(key="compare_runs").value) == {parent.id, child.id}
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    [loss] = [c for c in charts if "color" in c["layout"]["title"]["text"] and c["layout"]["xaxis"]["title"]["text"] == "step"]
    lines = {trace["name"].split(" · ")[0]: trace["x"] for trace in loss["data"]}
    assert lines["steer me"] == [1, 2, 3, 4, 5] and lines["the fork"] == [6, 7, 8]  # the branch leaves at step 5
    assert f"fork of {parent.id}" in [a.get("text") for a in loss["layout"]["annotations"]]


def test_fork_from_here_queues_a_branch_with_the_panels_weights_and_shows_it(running):
    from mtlcore.checkpoint import save_checkpoint
    from mtlcore.engine import TrainingRun

    store, record, _ = running
    save_checkpoint(store.checkpoint_path(record.id), TrainingRun.create(record.config))  # its last saved weights
    at = open_train(record.id, "alice", ALICE_KEY)
    at.slider(key=f"train_steer__{record.id}__loss_weights_shape").set_value(2.5).run()
    at.button(key="train_fork").click().run()
    assert not at.exception, at.exception
    child_id = at.session_state["train_run"]
    assert child_id != record.id
    child = store.get_run(child_id)
    assert child.state == "queued" and child.config.loss.weights["shape"] == 2.5
    assert steering.fork_parent(store, child_id) == (record.id, 0)
