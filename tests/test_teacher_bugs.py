"""Bugs a teacher hit in class (issue 16, section 2), as AppTests (Streamlit's AppTest, no browser).

One data folder for the module (MTL_HOME in a temporary directory); the
fixture stops any worker the app started there. No timing assertions.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore import ExperimentConfig, dataset_info
from mtlcore.runs import Runner, RunStore

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher") / "home"
    previous = os.environ.get("MTL_HOME")
    os.environ["MTL_HOME"] = str(folder)
    st.cache_resource.clear()
    yield folder
    Runner(RunStore(folder), max_workers=1).stop_workers(timeout=10)
    st.cache_resource.clear()
    if previous is None:
        os.environ.pop("MTL_HOME", None)
    else:
        os.environ["MTL_HOME"] = previous


def open_app(page: str | None = None, params: dict | None = None, owner: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if owner is not None:
        at.session_state["owner"] = owner
    if params:
        at.query_params.update(params)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def url_config(at: AppTest) -> ExperimentConfig:
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    return ExperimentConfig.from_flat({k: v for k, v in flat.items() if k not in ("run", "label", "key")})


def controls(at: AppTest) -> list:
    return [w for w in [*at.selectbox, *at.slider, *at.checkbox, *at.number_input, *at.select_slider, *at.toggle]
            if w.key and w.key.startswith("train_") and "reopen" not in w.key]


# ----- controls reset -------------------------------------------------------------------------

def assert_controls_show(at: AppTest, config: ExperimentConfig) -> None:
    """Every control is sent to the browser with its value, and the values are the configuration's."""
    for widget in controls(at):
        # A browser that does not hold the widget's state (it was not drawn on the last run, or that run was
        # cut short by a quick click) mounts it at its default unless the value comes with it: then it showed
        # unticked tasks, weights 0.00, n_samples=0 and image_size=16, and sent them back on the next click.
        assert widget.proto.set_value, f"{widget.key} is drawn without its value: a browser may show its default"
    info = dataset_info(config.dataset.name)
    assert at.selectbox(key="train_dataset").value == info.name
    for spec in info.tasks:
        assert at.checkbox(key=f"train_task__{info.name}__{spec.name}").value == (spec.name in config.tasks)
    for task in config.tasks:
        assert at.slider(key=f"train_w__{task}").value == pytest.approx(config.weight(task))
    for name, default in info.options.items():
        key = f"train_opt__{info.name}__{name}"
        widget = next(w for w in controls(at) if w.key == key)
        assert widget.value == config.dataset.options.get(name, default), key


def test_controls_never_drift_from_the_configuration(home):
    """Name + Enter, digits, shapes again, many times: the controls always show the defaults the URL names."""
    at = open_app(page="views/train.py")
    default = ExperimentConfig()
    for attempt in range(6):
        at.sidebar.text_input(key="owner").input(f"teacher {attempt}").run()
        at.selectbox(key="train_dataset").select("digits").run()
        assert not at.exception, at.exception
        digits = url_config(at)
        assert digits.dataset.name == "digits" and digits.tasks
        assert_controls_show(at, digits)
        if attempt % 2:
            # What Streamlit does to the state of widgets that a run did not draw: drop it.
            for spec in dataset_info("shapes").tasks:
                if f"train_task__shapes__{spec.name}" in at.session_state:
                    del at.session_state[f"train_task__shapes__{spec.name}"]
        at.selectbox(key="train_dataset").select("shapes").run()
        assert not at.exception, at.exception
        config = url_config(at)
        assert config.tasks == default.tasks and config.dataset == default.dataset
        assert_controls_show(at, config)
        assert not at.button(key="train_start").disabled


# ----- stale state ----------------------------------------------------------------------------

def test_a_second_preset_does_not_show_the_previous_run(home):
    store = RunStore(home)
    run_id = store.add_run(ExperimentConfig.from_flat({"train.epochs": "1", "train.max_samples": "50"}),
                           label="last lesson's run", owner="teacher").id
    store.cancel_run(run_id)
    at = open_app(page="views/train.py", params={"run": run_id})
    assert at.session_state["train_run"] == run_id
    assert any("last lesson" in m.value for m in at.markdown)
    at.switch_page("views/home.py").run()
    at.button(key="home_preset_1").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value.endswith("Train")
    assert "train_run" not in at.session_state
    assert "run" not in at.query_params
    assert not any("last lesson" in m.value for m in at.markdown)


TINY_RUN = {"tasks": "shape,color", "dataset.n_samples": "300", "train.epochs": "1", "train.max_samples": "60",
            "device": "cpu"}


def finished_run(store: RunStore, label: str, flat: dict | None = None, owner: str = "teacher"):
    """A finished run in the store with made-up test metrics (nothing trains)."""
    config = ExperimentConfig.from_flat(flat or TINY_RUN)
    record = store.add_run(config, label=label, owner=owner)
    store.claim_runs("a test, not a worker", [record.id])
    store.finish_run(record.id, "finished", summary={"test": {t: {"accuracy": 0.5} for t in config.tasks}})
    return store.get_run(record.id)


def test_compare_lists_the_baselines_it_just_queued(home):
    run = finished_run(RunStore(home), "lesson 2")
    at = open_app(page="views/compare.py", params={"run": run.id}, owner="teacher")
    at.button(key="compare_train_baselines").click().run()
    assert not at.exception, at.exception
    assert any("They appear above as they train" in s.value for s in at.success)
    shown = " ".join(m.value for m in at.markdown)
    # Named at once (and the page keeps polling while they train), not only after a reload.
    for task in run.config.tasks:
        assert f"**{task}**" in shown
    assert shown.count("single-task baseline queued") + shown.count("single-task baseline running") == len(
        run.config.tasks), shown


def test_predict_opens_the_newest_multi_task_run_and_says_so(tmp_path, monkeypatch):
    from mtlcore.compare import baseline_config
    from mtlcore.runs.processes import worker_name
    from mtlcore.runs.worker import train_one

    store = RunStore(tmp_path / "home")

    def train(config, label):
        run_id = store.add_run(config, label=label, owner="teacher").id
        assert train_one(store, store.claim_next(worker_name())) == "finished"
        return run_id

    mtl = ExperimentConfig.from_flat({**TINY_RUN, "model.width": 8, "train.max_samples": 40})
    mtl_id = train(mtl, "lesson")
    train(baseline_config(mtl, "shape"), "lesson · STL shape")  # newer: what a study makes last
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = AppTest.from_file(str(Path(APP).parent / "views" / "predict.py"), default_timeout=TIMEOUT)
        at.run()
        assert not at.exception, at.exception
        assert next(box for box in at.selectbox if box.label == "Run").value == mtl_id
        assert any("newest finished multi-task run" in c.value for c in at.caption)
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


# ----- datasets whose files are missing -------------------------------------------------------

def test_a_dataset_without_its_files_is_marked_and_cannot_be_started(home):
    from mtlcore import list_datasets

    missing = [d for d in list_datasets() if d.unavailable_reason() is not None]
    assert missing, "the test data folder has no torchvision files, so these datasets are unavailable"
    at = open_app(page="views/train.py")
    box = at.selectbox(key="train_dataset")
    assert f"{missing[0].name} · ⚠️ files missing" in box.options
    assert "shapes" in box.options  # the embedded datasets carry no mark
    box.select(missing[0].name).run()
    assert not at.exception, at.exception
    assert at.button(key="train_start").disabled
    shown = [e.value.replace("\\", "") for e in at.error]  # Markdown-escaped on the page
    assert missing[0].unavailable_reason() in shown, shown


# ----- the name is forgotten ------------------------------------------------------------------

def test_the_name_survives_a_preset_and_page_switches(home):
    at = open_app()
    at.sidebar.text_input(key="owner").input("Ms Rivera").run()
    at.button(key="home_preset_0").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value.endswith("Train")
    assert at.sidebar.text_input(key="owner").value == "Ms Rivera"
    assert at.sidebar.text_input(key="owner").proto.set_value or at.sidebar.text_input(key="owner").proto.default == "Ms Rivera"
    for page in ("views/compare.py", "views/home.py", "views/train.py"):
        at.switch_page(page).run()
        assert at.sidebar.text_input(key="owner").value == "Ms Rivera", page


# ----- an input that carries no information ---------------------------------------------------

def picture(size=(64, 64), background="white", ink=(220, 30, 30)) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, background)
    if ink is not None and min(size) > 4:
        ImageDraw.Draw(image).ellipse((size[0] // 5, size[1] // 5, size[0] * 4 // 5, size[1] * 4 // 5), fill=ink)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_tiny_blank_or_faint_picture_gets_a_warning_and_a_drawing_does_not():
    from mtlcore.predict import input_warning

    tiny = input_warning(picture((1, 1), ink=None))
    assert tiny and "1 x 1 pixels" in tiny and "guesses" in tiny
    blank = input_warning(picture(ink=None))
    assert blank and "blank" in blank
    faint = input_warning(picture(background=(128, 128, 128), ink=(133, 133, 133)))
    assert faint and "low contrast" in faint
    assert input_warning(picture()) is None


def test_predict_warns_next_to_the_answer_for_a_1x1_picture(tmp_path, monkeypatch):
    from mtlcore.runs.processes import worker_name
    from mtlcore.runs.worker import train_one

    store = RunStore(tmp_path / "home")
    run_id = store.add_run(ExperimentConfig.from_flat({**TINY_RUN, "model.width": 8, "train.max_samples": 40}),
                           label="tiny", owner="teacher").id
    assert train_one(store, store.claim_next(worker_name())) == "finished"
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = AppTest.from_file(str(Path(APP).parent / "views" / "predict.py"), default_timeout=TIMEOUT)
        at.query_params["run"] = run_id
        at.run()
        at.file_uploader(key="predict_upload").set_value(("dot.png", picture((1, 1), ink=None), "image/png"))
        at.run()
        assert not at.exception and not at.error
        assert any("1 x 1 pixels" in w.value for w in at.warning)
        assert any("**shape**:" in m.value for m in at.markdown)  # the answer is still shown, with the warning
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


# ----- charts that stop being readable --------------------------------------------------------

def test_an_extreme_task_weight_is_drawn_on_a_log_axis_and_the_title_says_so():
    from mtlcore import charts

    steps = [{"step": i, "weight": {"shape": 1.0, "color": 0.8 if i < 5 else 3.7e10}} for i in range(10)]
    fig = charts.weights_figure(steps, ["shape", "color"])
    assert fig.layout.yaxis.type == "log"
    assert "log scale" in fig.layout.title.text and "3.7e+10" in fig.layout.title.text
    calm = charts.weights_figure([{"step": i, "weight": {"shape": 1.0, "color": 2.0}} for i in range(5)],
                                 ["shape", "color"])
    assert calm.layout.yaxis.type != "log" and "log" not in calm.layout.title.text


def test_cosine_cells_hold_short_labels_and_legends_stay_clear_of_titles():
    import re

    from mtlcore import charts
    from mtlcore.studies.figures import _layout as study_layout
    import plotly.graph_objects as go

    tasks = ["shape", "color", "size", "background"]
    pairs = [f"{a}|{b}" for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    epochs = [{"epoch": 1, "diagnostics": {"cosine_mean": {p: -0.25 for p in pairs},
                                           "conflict_fraction": {p: 0.67 for p in pairs}}}]
    fig = charts.cosine_figure([], epochs, tasks)
    for row in fig.data[0].text:
        for cell in row:
            for line in re.sub(r"<[^>]+>", "\n", cell).split("\n"):
                assert len(line.strip()) <= 5, cell  # "-0.25", "67%": fits a 40 px cell at 1024 px
    assert "conflict" in fig.layout.title.text
    for figure in (charts.step_loss_figure([{"step": 1, "loss": {"shape": 1.0}}], ["shape"]), fig,
                   study_layout(go.Figure(), "a study")):
        assert figure.layout.legend.y < 0 and figure.layout.legend.yanchor == "top"  # below the plot


# ----- teaching truth of the presets ------------------------------------------------------------

def test_the_first_preset_does_not_promise_what_its_runs_do_not_show():
    from ui.presets import PRESETS

    first = PRESETS[0]
    # A 3-seed stl-vs-mtl study of these settings: shape -10 points, size +12 % error (negative transfer).
    assert first.settings["tasks"] == "shape,color,size"
    assert "sharing helps" not in first.title.lower()
    assert "hurt" in first.title.lower() and "shape" in first.blurb


def test_the_digits_preset_does_not_promise_a_gain_its_seeds_do_not_show():
    from ui.presets import PRESETS

    digits = next(p for p in PRESETS if p.settings.get("dataset.name") == "digits")
    # A 3-seed study: Δm = -0.0 % ± 1.2 (within noise).
    assert "should help" not in digits.blurb and "noise" in digits.blurb
