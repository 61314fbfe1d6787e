"""The Home, Train and Learn pages as a person uses them (Streamlit's AppTest, no browser).

Every test shares one data folder (MTL_HOME in a temporary directory) and the
one background worker that the app starts there; the fixture stops it. Runs
are tiny (one epoch on a few hundred shapes) and each test has its own owner
name, so tests can look for their own runs. No timing assertions: waits only
have generous limits.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore import ARCHITECTURES, WEIGHTINGS, ExperimentConfig
from mtlcore import charts
from mtlcore.runs import Runner, RunStore
from ui.presets import PRESETS
from ui.texts import loss_formula

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60  # seconds for one script run (the first one imports a lot)
TINY = {"tasks": "shape,color", "dataset.n_samples": "300", "train.epochs": "1", "train.max_samples": "100",
        "device": "cpu"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh data folder for the app; its worker processes are stopped afterwards."""
    folder = tmp_path_factory.mktemp("app") / "home"
    previous = os.environ.get("MTL_HOME")
    os.environ["MTL_HOME"] = str(folder)
    st.cache_resource.clear()  # the store and runner are cached per folder, but start clean
    yield folder
    Runner(RunStore(folder), max_workers=1).stop_workers(timeout=10)
    st.cache_resource.clear()
    if previous is None:
        os.environ.pop("MTL_HOME", None)
    else:
        os.environ["MTL_HOME"] = previous


def open_app(owner: str = "tester", page: str | None = None, params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["owner"] = owner
    if params:
        at.query_params.update(params)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def values(elements) -> dict:
    return {e.key: e.value for e in elements if e.key}


def wait_for(at: AppTest, condition, what: str, timeout: float = 180.0) -> AppTest:
    """Rerun the page (as its polling fragment would) until ``condition(at)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if condition(at):
            return at
        time.sleep(0.5)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")


# ----- Home -----------------------------------------------------------------------------

def test_home_explains_mtl_and_offers_every_preset(home):
    at = open_app()
    assert at.title[0].value.endswith("MTL Lab")
    text = " ".join(m.value for m in at.markdown)
    assert "several tasks at once" in text
    for preset in PRESETS:
        assert preset.title in text
    assert [b.label for b in at.button if b.key.startswith("home_preset_")] == ["Open in Train →"] * len(PRESETS)
    # The shared sidebar: who you are, where runs are stored, how busy the queue is.
    assert at.sidebar.text_input[0].label == "Your name"
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert str(home) in captions and "Queue" in captions


def test_a_preset_opens_train_with_its_settings(home):
    at = open_app()
    index = next(i for i, p in enumerate(PRESETS) if p.settings.get("dataset.name") == "synthetic")
    at.button(key=f"home_preset_{index}").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value.endswith("Train")
    widgets = values(at.selectbox)
    assert widgets["train_dataset"] == "synthetic"
    assert values(at.checkbox)["train_task__synthetic__task_a"] is True
    assert values(at.checkbox)["train_task__synthetic__task_b"] is True
    assert at.query_params["dataset.name"] == ["synthetic"] or at.query_params["dataset.name"] == "synthetic"
    assert at.text_input(key="train_label").value == PRESETS[index].label
    assert at.sidebar.text_input[0].label == "Your name"  # the page runs inside app.py, with its sidebar


def test_the_few_labels_preset_opens_train_with_reconstruction_and_five_percent_of_the_labels(home):
    at = open_app()
    index = next(i for i, p in enumerate(PRESETS) if "train.label_fraction" in p.settings)
    at.button(key=f"home_preset_{index}").click().run()
    assert not at.exception, at.exception
    assert values(at.checkbox)["train_task__digits__reconstruction"] is True
    assert values(at.checkbox)["train_task__digits__digit"] is True
    assert at.slider(key="train_label_fraction").value == pytest.approx(0.05)
    assert at.slider(key="train_w__reconstruction").label == "reconstruction"  # its own loss-weight slider


# ----- Train: settings ----------------------------------------------------------------------

def test_train_opens_with_the_default_settings(home):
    at = open_app(page="views/train.py")
    assert values(at.selectbox)["train_dataset"] == "shapes"
    ticked = [k.rsplit("__", 1)[1] for k, v in values(at.checkbox).items() if k.startswith("train_task__") and v]
    assert sorted(ticked) == sorted(ExperimentConfig().tasks)
    assert {k: v for k, v in values(at.slider).items() if k.startswith("train_w__")} == {
        f"train_w__{t}": 1.0 for t in ExperimentConfig().tasks}
    assert not at.error
    assert not at.button(key="train_start").disabled
    # Every control explains itself.
    for widget in [*at.selectbox, *at.slider, *at.checkbox, *at.number_input, *at.select_slider, *at.toggle]:
        assert widget.help, f"{widget.label} has no help text"


def test_train_takes_its_settings_from_a_shared_link_and_keeps_the_link_up_to_date(home):
    link = {"dataset.name": "synthetic", "tasks": "task_a,task_b", "loss.weights.task_a": "2.5",
            "model.arch": "mmoe", "optim.lr": "0.01", "dataset.correlation": "0.9", "train.epochs": "3"}
    at = open_app(page="views/train.py", params=link)
    assert values(at.selectbox)["train_dataset"] == "synthetic"
    assert values(at.selectbox)["train_arch"] == "mmoe"
    assert at.slider(key="train_w__task_a").value == 2.5
    assert at.slider(key="train_w__task_b").value == 1.0
    assert at.slider(key="train_opt__synthetic__correlation").value == 0.9
    assert at.slider(key="train_epochs").value == 3
    assert at.select_slider(key="train_lr").value == 0.01

    at.slider(key="train_w__task_b").set_value(3.0).run()
    url = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert ExperimentConfig.from_flat({k: v for k, v in url.items() if k not in ("run", "label")}).loss.weights == {
        "task_a": 2.5, "task_b": 3.0}
    assert url["model.arch"] == "mmoe"


def test_impossible_settings_are_explained_and_cannot_be_started(home):
    at = open_app(owner="impossible", page="views/train.py", params={"tasks": "shape,color"})
    for task in ("shape", "color"):
        at.slider(key=f"train_w__{task}").set_value(0.0)
    at.run()
    assert any("weights are zero" in e.value for e in at.error)
    assert at.button(key="train_start").disabled

    at.slider(key="train_w__shape").set_value(1.0)
    at.selectbox(key="train_arch").set_value("single").run()
    assert any("single" in e.value and "one task" in e.value for e in at.error)
    assert at.button(key="train_start").disabled

    if "pcgrad" in WEIGHTINGS.names():
        at.selectbox(key="train_arch").set_value("soft")
        at.selectbox(key="train_method").set_value("pcgrad").run()
        assert any("soft" in e.value for e in at.error)
        assert at.button(key="train_start").disabled
    assert RunStore(home).list_runs(owner="impossible") == []


# ----- Train: a real background run ---------------------------------------------------------

def test_start_trains_in_the_background_and_shows_each_tasks_results(home):
    at = open_app(owner="alice", page="views/train.py", params=TINY)
    at.text_input(key="train_label").input("tiny run")
    at.button(key="train_start").click().run()
    assert not at.error, [e.value for e in at.error]
    runs = RunStore(home).list_runs(owner="alice")
    assert [r.label for r in runs] == ["tiny run"]
    run_id = runs[0].id
    assert at.session_state["train_run"] == run_id
    url_run = at.query_params.get("run")
    assert run_id in (url_run if isinstance(url_run, list) else [url_run])

    at = wait_for(at, lambda a: len(a.dataframe) > 0, "the finished run's results")
    table = at.dataframe[0].value
    assert list(table["Task"]) == ["shape", "color"]
    assert all(value.endswith("%") for value in table["Test"])  # accuracy, as a percentage
    assert list(table["Chance"]) == ["25.0%", "25.0%"]
    assert RunStore(home).get_run(run_id).state == "finished"

    # A reload (a new session with the same link) shows the same run again.
    again = open_app(owner="alice", page="views/train.py", params={**TINY, "run": run_id})
    assert again.session_state["train_run"] == run_id
    assert len(again.dataframe) == 1
    assert any("tiny run" in m.value for m in again.markdown)

    # So does reopening it from "Your recent runs", which also puts its settings back in the controls.
    # "Your" runs are this browser's key's (a real browser keeps the key in a cookie; here the link carries it).
    later = open_app(owner="alice", page="views/train.py", params={"key": at.session_state["owner_key"]})
    assert "train_run" not in later.session_state
    next(box for box in later.selectbox if box.label == "Run").set_value(run_id).run()  # its key moves with its labels
    later.button(key="train_reopen").click().run()
    assert later.session_state["train_run"] == run_id
    assert later.number_input(key="train_opt__shapes__n_samples").value == 300
    assert len(later.dataframe) == 1


def test_a_start_clicked_before_the_browser_took_the_pages_address_keeps_its_run(home):
    # The page rewrites the link it was opened with (a default spelt out is dropped from it); a click that
    # comes before the browser has taken that address carries the old one. The run it starts is still the page's.
    opened_with = {"dataset.name": "shapes", **TINY}
    at = open_app(owner="dora", page="views/train.py", params=opened_with)
    assert dict(at.query_params) != opened_with  # the page wrote its own address
    at.query_params.clear()
    at.query_params.update(opened_with)  # the browser's address, not yet the page's
    at.button(key="train_start").click().run()
    [run] = RunStore(home).list_runs(owner="dora")
    try:
        assert at.session_state["train_run"] == run.id
        url_run = at.query_params.get("run")
        assert run.id in (url_run if isinstance(url_run, list) else [url_run])
        assert not any("press **Start**" in i.value for i in at.info)  # the live panel, not the empty page

        # So is Reset, clicked with the address of before the Start: the defaults, not the old link's settings.
        at.query_params.clear()
        at.query_params.update(opened_with)
        at.button(key="train_reset").click().run()
        assert at.session_state["train_config"] == ExperimentConfig()
        assert at.session_state["train_run"] == run.id  # Reset leaves the run as it is
    finally:
        Runner(RunStore(home), max_workers=1).cancel(run.id)


def test_only_the_owner_can_stop_a_run(home):
    long_run = {**TINY, "train.epochs": "500", "train.batch_size": "8"}
    mine = open_app(owner="bob", page="views/train.py", params=long_run)
    assert mine.button(key="train_stop").disabled  # nothing to stop yet
    mine.button(key="train_start").click().run()
    run_id = mine.session_state["train_run"]
    try:
        assert not mine.button(key="train_stop").disabled  # queued or training: bob may stop it

        others = open_app(owner="carol", page="views/train.py", params={"run": run_id})
        assert others.button(key="train_stop").disabled
        assert any("Only bob can stop this run" in c.value for c in others.caption)

        mine.button(key="train_stop").click().run()
        assert not mine.error, [e.value for e in mine.error]
        # The page's next poll after the run stopped greys the button out (the
        # run may stop between one rerun and the check: the condition waits for both).
        wait_for(mine, lambda a: RunStore(home).get_run(run_id).state in ("cancelled", "interrupted")
                 and a.button(key="train_stop").disabled, "the run to stop and its Stop button to grey out")
    finally:
        Runner(RunStore(home), max_workers=1).cancel(run_id)


# ----- Learn ---------------------------------------------------------------------------------

def test_learn_explains_each_idea_with_its_paper(home):
    at = open_app(page="views/learn.py")
    headers = [h.value for h in at.header]
    for title in ("What multi-task learning is", "Cross-stitch networks", "Gradient conflict", "Task affinity"):
        assert title in headers
    captions = " ".join(c.value for c in at.caption)
    for author in ("Caruana", "Ruder", "Misra", "Ma, J.", "Maninis", "Yu, T.", "Fifty"):
        assert author in captions
    text = " ".join(m.value for m in at.markdown)
    for name in WEIGHTINGS.names():  # listed from the registry
        assert f"**{name}**" in text


# ----- figures and formula (no Streamlit) -------------------------------------------------------

def test_every_architecture_has_a_diagram_naming_each_task():
    for arch in ARCHITECTURES.names():
        fig = charts.architecture_figure(arch, ["shape", "color"])
        texts = " ".join(a.text for a in fig.layout.annotations)
        assert "shape" in texts
        assert ("color" in texts) == (arch != "single")


def test_diagnostic_figures_read_the_logged_matrices():
    tasks = ["a", "b"]
    steps = [{"step": 1, "epoch": 1, "loss": {"a": 1.0, "b": 2.0}, "weight": {"a": 1.0, "b": 1.0},
              "diagnostics": {"cosine": {"a|b": -0.5}, "affinity": {"a->a": 0.1, "a->b": -0.2, "b->a": 0.3, "b->b": 0.4}}}]
    epochs = [{"epoch": 1, "train": {"a": {"loss": 1.0, "accuracy": 0.5}}, "val": {"a": {"loss": 1.1, "accuracy": 0.4}},
               "diagnostics": {"tasks": tasks, "cosine_mean": {"a|b": -0.25}, "conflict_fraction": {"a|b": 1.0},
                               "affinity": {"a->a": 0.1, "a->b": -0.2, "b->a": 0.3, "b->b": 0.4}}}]
    assert charts.has_diagnostics(steps, epochs)
    def matrix(fig):
        return [list(row) for row in fig.data[0].z]

    assert matrix(charts.cosine_figure(steps, epochs, tasks)) == [[1.0, -0.25], [-0.25, 1.0]]
    assert matrix(charts.affinity_figure(epochs, tasks)) == [[0.1, -0.2], [0.3, 0.4]]
    assert not charts.weights_vary(steps)
    fig = charts.epoch_figure(epochs, "a", "accuracy", chance=0.25)
    assert [list(t.y) for t in fig.data] == [[1.0], [1.1], [0.5], [0.4]]


def test_the_loss_formula_shows_the_slider_weights():
    latex = loss_formula(["shape", "size"], {"shape": 2.0}, {"shape": "classification", "size": "regression"})
    assert r"2\,\underbrace{\mathcal{L}_{\text{shape}}}_{\mathrm{CE}}" in latex  # the slider's 2
    assert r"\mathcal{L}_{\text{size}}}_{\mathrm{MSE}}" in latex


@pytest.mark.parametrize("view", ["views/studies.py", "views/data.py"])
def test_the_studies_and_data_pages_render_inside_the_app(home, view):
    at = open_app(page=view)
    assert at.title, f"{view} shows no title"
    assert not at.error, [e.value for e in at.error]
