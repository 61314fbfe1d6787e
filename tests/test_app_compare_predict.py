"""The Compare and Predict pages, driven through Streamlit's AppTest.

Runs are real but tiny: each is queued in a store under a temporary MTL_HOME
and trained in this process with the worker's own ``train_one``, so the
pages read exactly what a background worker would have written.
"""
import io
import sys
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from mtlcore import ExperimentConfig
from mtlcore.compare import baseline_config, delta_m
from mtlcore.runs import Runner, RunStore
from mtlcore.runs.processes import worker_name
from mtlcore.runs.worker import train_one

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the pages import ui.session from the project root
    sys.path.insert(0, str(ROOT))

COMPARE, PREDICT = str(ROOT / "views" / "compare.py"), str(ROOT / "views" / "predict.py")
TIMEOUT = 60


def tiny(**flat) -> ExperimentConfig:
    settings = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.max_samples": 100,
                "train.epochs": 1, "device": "cpu", "tasks": "shape,size", "model.width": 8, **flat}
    return ExperimentConfig.from_flat(settings)


def train(store: RunStore, config: ExperimentConfig, label: str) -> str:
    """Queue ``config`` and train it here, as a worker would; return the run id."""
    run_id = store.add_run(config, label=label, owner="teacher").id
    claimed = store.claim_next(worker_name())
    assert claimed.id == run_id
    assert train_one(store, claimed) == "finished"
    return run_id


@pytest.fixture(scope="module")
def filled_home(tmp_path_factory):
    """A store with a multi-task run, both its single-task baselines, and a vector-input run."""
    home = tmp_path_factory.mktemp("filled") / "home"
    store = RunStore(home)
    mtl = tiny()
    ids = {
        "stl_shape": train(store, baseline_config(mtl, "shape"), "demo · STL shape"),
        "stl_size": train(store, baseline_config(mtl, "size"), "demo · STL size"),
        "synthetic": train(store, tiny(**{"dataset.name": "synthetic", "tasks": "task_a,task_b"}), "vectors"),
        "mtl": train(store, mtl, "demo"),
    }
    return home, ids


@pytest.fixture
def use_home(monkeypatch):
    """Point the app at ``home``: MTL_HOME, and no store or model cached from another test."""
    def use(home):
        monkeypatch.setenv("MTL_HOME", str(home))
        st.cache_resource.clear()
        st.cache_data.clear()
        return RunStore(home)
    yield use
    st.cache_resource.clear()
    st.cache_data.clear()


def run_page(path: str, **query) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def png(draw=True) -> bytes:
    image = Image.new("RGB", (64, 64), "white")
    if draw:
        ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(220, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ----- empty store -----------------------------------------------------------------------

def test_both_pages_render_with_an_empty_store_and_say_what_to_do(tmp_path, use_home):
    use_home(tmp_path / "empty")
    compare = run_page(COMPARE)
    assert "No runs yet" in texts(compare.info)
    predict = run_page(PREDICT)
    assert "No run has a checkpoint yet" in texts(predict.info)


# ----- compare ------------------------------------------------------------------------------

def test_compare_shows_delta_m_and_each_task_against_its_baseline(filled_home, use_home):
    home, ids = filled_home
    store = use_home(home)
    at = run_page(COMPARE)

    # The newest multi-task run and both its baselines are picked by default.
    assert set(at.multiselect(key="compare_runs").value) == {ids["mtl"], ids["stl_shape"], ids["stl_size"]}
    mtl, shape, size = (store.get_run(ids[k]) for k in ("mtl", "stl_shape", "stl_size"))
    expected = delta_m(
        {"shape": mtl.summary["test"]["shape"]["accuracy"], "size": mtl.summary["test"]["size"]["mae"]},
        {"shape": shape.summary["test"]["shape"]["accuracy"], "size": size.summary["test"]["size"]["mae"]},
        {"shape": True, "size": False},
    )
    metric = at.metric[0]
    assert metric.label.startswith("Δm") and "negative = multi-task better" in metric.label
    assert metric.value == f"{expected:+.2f} %"
    words = texts(at.markdown)
    assert "**shape** (accuracy, higher is better)" in words and "**size** (mae, lower is better)" in words
    assert ("multi-task better" in words) or ("multi-task worse" in words) or ("no difference" in words)
    assert "One seed: not enough to tell" in words  # one seed per side: a difference, not a verdict
    # Four curves: validation metric and training loss, for each of the two tasks; and shape's reliability diagram.
    assert len(at.get("plotly_chart")) == 5
    assert at.selectbox(key="compare_calibration_pick").value.endswith("/shape")
    assert len(at.get("download_button")) == 2
    assert at.button(key="compare_train_baselines").disabled  # nothing missing


def test_train_missing_baselines_queues_one_single_task_run_per_task(filled_home, use_home, monkeypatch, tmp_path):
    home, ids = filled_home
    # A copy of the home, so that the queued runs do not leak into other tests.
    import shutil
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    store = use_home(copy)
    other = store.add_run(tiny(seed=5), label="seed five", owner="teacher")
    store.finish_run(other.id, "finished", summary={"test": {"shape": {"accuracy": 0.5}, "size": {"mae": 1.0}}})
    # No worker processes in a unit test: a runner with zero workers only queues.
    import ui.session
    monkeypatch.setattr(ui.session, "get_runner", lambda: Runner(RunStore(copy), max_workers=0))

    at = run_page(COMPARE, run=other.id)
    assert "Δm needs a finished single-task baseline" in texts(at.info)
    button = at.button(key="compare_train_baselines")
    assert not button.disabled
    button.click().run()
    assert not at.exception
    queued = {r.label: r for r in store.list_runs(states=["queued"])}
    assert set(queued) == {"seed five · STL shape", "seed five · STL size"}
    assert queued["seed five · STL size"].config == baseline_config(other.config, "size")
    assert "Queued single-task baselines for: shape, size" in texts(at.success)
    # Once queued they count as pending: the button has nothing left to train.
    at.run()
    assert at.button(key="compare_train_baselines").disabled
    assert "single-task baseline queued" in texts(at.markdown)


def test_compare_filters_by_label_and_keeps_picks(filled_home, use_home):
    home, ids = filled_home
    use_home(home)
    at = run_page(COMPARE)
    at.text_input(key="compare_label_filter").input("vectors").run()
    assert not at.exception
    picker = at.multiselect(key="compare_runs")
    listed = " ".join(picker.options)  # AppTest lists the options as they are shown
    assert "(1 of 4 shown)" in picker.label and ids["synthetic"] in listed
    assert ids["mtl"] in listed and ids["stl_size"] in listed  # runs picked before the filter stay listed
    assert ids["stl_size"] in picker.value


# ----- predict --------------------------------------------------------------------------------

def test_predict_shows_one_prediction_per_task_for_an_uploaded_png(filled_home, use_home):
    home, ids = filled_home
    use_home(home)
    at = run_page(PREDICT, run=ids["mtl"])
    assert next(box for box in at.selectbox if box.label == "Run").value == ids["mtl"]
    assert "What this model expects" in texts(at.info)
    at.file_uploader(key="predict_upload").set_value(("circle.png", png(), "image/png"))
    at.run()
    assert not at.exception and not at.error
    words = texts(at.markdown)
    assert "**shape**:" in words  # classification: the class and how sure
    assert [m.label for m in at.metric] == ["size"]  # regression: a value with its unit
    assert at.metric[0].value.endswith(" px")
    assert len(at.get("plotly_chart")) == 2  # the class probabilities of shape, and how they move with T
    images = at.get("image")  # the picture as the model sees it
    assert len(images) == 1 and "As the model sees it: 32 x 32 pixels" in images[0].captions[0]
    assert "Prediction took" in texts(at.caption)


@pytest.mark.parametrize("name, content, message", [
    ("notes.txt", b"this is not a picture", "not an image"),
    ("empty.png", b"", "empty"),
    ("broken.png", png()[:60], "corrupt"),
    ("huge.png", "huge", "the limit is 50 megapixels"),
])
def test_predict_rejects_a_bad_file_with_one_clear_message(filled_home, use_home, name, content, message):
    home, ids = filled_home
    use_home(home)
    if content == "huge":  # 8000 x 7000 = 56 megapixels, a few kilobytes of PNG
        buffer = io.BytesIO()
        Image.new("1", (8000, 7000)).save(buffer, format="PNG")
        content = buffer.getvalue()
    at = run_page(PREDICT, run=ids["mtl"])
    at.file_uploader(key="predict_upload").set_value((name, content, "application/octet-stream"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    # The page keeps working: a good picture afterwards is predicted.
    at.file_uploader(key="predict_upload").set_value(("circle.png", png(), "image/png"))
    at.run()
    assert not at.error and [m.label for m in at.metric] == ["size"]


def test_predict_says_vector_datasets_cannot_take_a_picture(filled_home, use_home):
    home, ids = filled_home
    use_home(home)
    at = run_page(PREDICT, run=ids["synthetic"])
    assert "prediction from an image is not available" in texts(at.info)
    assert not at.get("file_uploader")


def test_predict_draw_and_camera_sources_render(filled_home, use_home):
    home, ids = filled_home
    use_home(home)
    at = run_page(PREDICT, run=ids["mtl"])
    at.radio(key="predict_source").set_value("Draw").run()
    assert not at.exception
    assert at.color_picker(key="predict_ink_shapes").value.lower() == "#e53935"
    assert "Draw on the white canvas" in texts(at.caption)
    at.radio(key="predict_source").set_value("Take a photo").run()
    assert not at.exception and len(at.get("camera_input")) == 1
