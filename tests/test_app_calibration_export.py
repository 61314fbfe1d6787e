"""Predict page: the temperature slider, mean ± std of a Gaussian head, and the export downloads (AppTest)."""
import io
import re
import sys
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from mtlcore import ExperimentConfig
from mtlcore.runs import RunStore
from mtlcore.runs.processes import worker_name
from mtlcore.runs.worker import train_one

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PREDICT = str(ROOT / "views" / "predict.py")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("calibrated") / "home"
    store = RunStore(home)
    config = ExperimentConfig.from_flat({"dataset.name": "shapes", "dataset.n_samples": 300, "train.epochs": 2,
                                         "device": "cpu", "tasks": "color,size", "model.width": 8,
                                         "loss.regression": "gaussian_nll"})
    run_id = store.add_run(config, label="gauss", owner="teacher").id
    assert train_one(store, store.claim_next(worker_name())) == "finished"
    return home, run_id, store.get_run(run_id).summary


@pytest.fixture
def page(home, monkeypatch):
    path, run_id, summary = home
    monkeypatch.setenv("MTL_HOME", str(path))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(PREDICT, default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle((16, 16, 48, 48), fill=(30, 30, 220))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    at.file_uploader(key="predict_upload").set_value(("blue.png", buffer.getvalue(), "image/png"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    yield at, summary
    st.cache_resource.clear()


def sureness(at) -> float:
    line = next(m.value for m in at.markdown if m.value.startswith("**color**"))
    return float(re.search(r"\((\d+)% sure\)", line).group(1))


def test_the_temperature_slider_starts_at_the_fitted_value_and_sharpens_or_flattens(page):
    at, summary = page
    fitted = summary["test"]["color"]["temperature"]
    slider = at.slider(key="predict_temperature_color")
    assert slider.value == pytest.approx(min(10.0, max(0.1, fitted)), abs=0.01)
    assert f"fitted T = {fitted:.2f}" in next(m.value for m in at.markdown if m.value.startswith("**color**"))
    slider.set_value(0.1).run()
    sharp = sureness(at)
    at.slider(key="predict_temperature_color").set_value(10.0).run()
    flat = sureness(at)
    assert sharp > flat and flat <= 40  # four colours: at T = 10 close to 25 % each


def test_a_gaussian_head_shows_mean_plus_minus_std(page):
    at, _ = page
    (metric,) = [m for m in at.metric if m.label == "size"]
    assert "±" in metric.value and metric.value.endswith(" px")


def test_the_model_and_its_code_can_be_downloaded(page):
    at, _ = page
    keys = {b.key for b in at.get("download_button")}
    assert {"predict_download_model", "predict_download_json", "predict_download_script",
            "predict_download_data"} <= keys
    assert any("class HardSharing" in c.value for c in at.code)
