"""The Train page's settings table and a lesson link's hidden and locked controls (issue 15.4, 19.1).

Pure tests of ``ui/train_settings.py`` (the table turns a configuration into
controls and back) and AppTests of the page opened from a lesson link. No
worker trains anything (MTL_WORKERS=0): Start only queues.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore import ARCHITECTURES, WEIGHTINGS, ExperimentConfig
from mtlcore.optim import OPTIMIZERS
from mtlcore.runs import RunStore
from ui.train_settings import SETTINGS, absorb, lesson_link, rows_for, widget_values

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("settings") / "home"
    saved = {k: os.environ.get(k) for k in ("MTL_HOME", "MTL_WORKERS")}
    os.environ.update(MTL_HOME=str(folder), MTL_WORKERS="0")
    st.cache_resource.clear()
    yield folder
    st.cache_resource.clear()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def open_train(params: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["owner"] = "student"
    at.query_params.update(params)
    at.run()
    at.switch_page("views/train.py").run()
    assert not at.exception, at.exception
    return at


def keys_drawn(at: AppTest) -> set[str]:
    return {w.key for w in [*at.selectbox, *at.slider, *at.checkbox, *at.number_input, *at.select_slider, *at.toggle]
            if w.key and w.key.startswith("train_")}


def url(at: AppTest) -> dict[str, str]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


# ----- the table ------------------------------------------------------------------------------

def test_the_controls_show_a_configuration_and_give_it_back():
    config = ExperimentConfig.from_flat({
        "dataset.name": "synthetic", "tasks": "task_a,task_b", "loss.weights.task_a": "2.5", "model.arch": "mmoe",
        "model.num_experts": "6", "optim.name": "sgd", "optim.lr": "0.03", "optim.momentum": "0.5",
        "dataset.correlation": "0.9", "train.epochs": "3", "reg.dropout": "0.2", "seed": "7"})
    values = widget_values(config)
    assert values["train_arch"] == "mmoe" and values["train_w__task_a"] == 2.5 and values["train_momentum"] == 0.5
    # Every control moved to these values on a default synthetic config gives the same configuration back.
    start = ExperimentConfig.from_flat({"dataset.name": "synthetic", "tasks": "task_a,task_b"})
    assert absorb(start, values) == config


def test_choices_come_from_the_registries_and_each_control_has_its_own_key():
    rows = {row.key: row for row in SETTINGS}
    assert rows["model.arch"].offered() == ARCHITECTURES.names()
    assert rows["weighting.method"].offered() == WEIGHTINGS.names()
    assert rows["optim.name"].offered() == OPTIMIZERS.names()
    keys = [row.widget_key for row in rows_for(ExperimentConfig())]
    assert len(keys) == len(set(keys))


def test_experts_and_momentum_appear_only_where_the_model_and_optimiser_read_them():
    rows = {row.key: row for row in SETTINGS}
    mmoe = ExperimentConfig.from_flat({"model.arch": "mmoe"})
    assert rows["model.num_experts"].shown(mmoe) and not rows["model.num_experts"].shown(ExperimentConfig())
    assert rows["reg.soft_lambda"].shown(ExperimentConfig.from_flat({"model.arch": "soft"}))
    assert not rows["reg.soft_lambda"].shown(mmoe)
    assert rows["optim.momentum"].shown(ExperimentConfig.from_flat({"optim.name": "sgd"}))
    assert not rows["optim.momentum"].shown(ExperimentConfig())  # adam


# ----- a lesson link ----------------------------------------------------------------------------

LESSON = ExperimentConfig.from_flat({"optim.lr": "0.01", "train.epochs": "3", "loss.weights.shape": "2"})


def lesson_params(**kwargs) -> dict[str, str]:
    return dict(parse_qsl(lesson_link(LESSON, **kwargs).split("?", 1)[1]))


def test_a_lesson_link_hides_and_locks_controls_and_keeps_their_values(home):
    at = open_train(lesson_params(hidden=("optim.lr", "loss.weights"), locked=("model.arch",), explain=False,
                                  lesson="weights", step="2"))
    drawn = keys_drawn(at)
    assert "train_lr" not in drawn and not any(k.startswith("train_w__") for k in drawn)
    assert "train_epochs" in drawn and "train_task__shapes__shape" in drawn
    assert at.selectbox(key="train_arch").disabled and not at.selectbox(key="train_dataset").disabled
    assert not any(e.label == "Loss formula" for e in at.expander)  # explain=0: no explanations
    # The hidden settings keep the link's values, and the address keeps the lesson's keys.
    link = url(at)
    assert link["optim.lr"] == "0.01" and link["loss.weights.shape"] == "2.0"
    assert link["hide"] == "optim.lr,loss.weights" and link["lock"] == "model.arch" and link["lesson"] == "weights"
    at.button(key="train_start").click().run()
    (run,) = RunStore(home).list_runs(owner="student")
    assert run.config.optim.lr == 0.01 and run.config.weight("shape") == 2.0 and run.config.train.epochs == 3


def test_a_locked_control_cannot_be_moved_and_reset_returns_to_the_lesson(home):
    at = open_train(lesson_params(locked=("train.epochs",)))
    assert at.slider(key="train_epochs").disabled
    at.session_state["train_epochs"] = 40  # a forged move of the disabled control (a browser cannot) changes nothing
    at.run()
    assert url(at)["train.epochs"] == "3"
    at.select_slider(key="train_lr").set_value(0.1).run()
    assert url(at)["optim.lr"] == "0.1"
    at.button(key="train_reset").click().run()
    assert at.select_slider(key="train_lr").value == 0.01  # the lesson's value, not the default 0.003
    assert url(at)["optim.lr"] == "0.01" and url(at)["lock"] == "train.epochs"


def test_hiding_every_control_never_hides_the_results(home):
    store = RunStore(home)
    record = store.add_run(LESSON, label="lesson run", owner="teacher")
    store.claim_runs("a test, not a worker", [record.id])
    store.finish_run(record.id, "finished", summary={"test": {t: {"accuracy": 0.5} for t in LESSON.tasks},
                                                     "tasks": {t: {"kind": "classification", "num_classes": 4}
                                                               for t in LESSON.tasks}})
    at = open_train({**lesson_params(hidden=("dataset", "tasks", "loss", "model", "weighting", "optim", "train",
                                             "reg", "seed")), "run": record.id})
    assert not keys_drawn(at)
    assert len(at.dataframe) == 1 and list(at.dataframe[0].value["Task"]) == list(LESSON.tasks)


def test_mmoe_shows_its_units_per_expert_and_the_link_carries_them(home):
    at = open_train({"model.arch": "mmoe"})
    box = at.number_input(key="train_model.expert_hidden")
    assert box.value == 0 and box.help
    box.set_value(16).run()
    assert url(at)["model.expert_hidden"] == "16"
    at.selectbox(key="train_arch").set_value("hard").run()
    assert "train_model.expert_hidden" not in keys_drawn(at)  # hard sharing has no experts
