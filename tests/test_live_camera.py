"""The Predict page's live camera: every task's prediction follows the camera's frames.

The frame handler is tested directly with frames made like WebRTC's
(``av.VideoFrame``); the whole path (browser camera -> WebRTC -> this server
-> prediction on the page) is tested in Chromium with its fake camera, which
streams a moving test pattern, so no real camera is needed.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="streamlit-webrtc's av package is not installed")

from mtlcore import ExperimentConfig  # noqa: E402
from mtlcore.predict import load_model  # noqa: E402
from mtlcore.runs import RunStore  # noqa: E402
from mtlcore.runs.processes import worker_name  # noqa: E402
from mtlcore.runs.worker import train_one  # noqa: E402
from ui.live_camera import LivePrediction  # noqa: E402

from helpers import BROWSER_ARGS, CHROMIUM, serve_app  # noqa: E402
LIMIT_MS = 180_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A data folder with one finished shapes run (shape, color)."""
    home = tmp_path_factory.mktemp("live") / "home"
    store = RunStore(home)
    config = ExperimentConfig.from_flat({"dataset.name": "shapes", "dataset.n_samples": 200, "train.epochs": 1,
                                         "device": "cpu", "tasks": "shape,color", "model.width": 8})
    run_id = store.add_run(config, label="live", owner="teacher").id
    assert train_one(store, store.claim_next(worker_name())) == "finished"
    return home, run_id, store.checkpoint_path(run_id)


def frame(colour: tuple[int, int, int]) -> "av.VideoFrame":
    picture = np.full((120, 160, 3), 255, dtype=np.uint8)
    picture[30:90, 50:110] = colour  # a coloured square on white, like a drawn shape
    return av.VideoFrame.from_ndarray(picture, format="rgb24")


def test_each_camera_frame_gives_every_tasks_prediction_and_is_sent_back(trained):
    _, _, checkpoint = trained
    predictor = LivePrediction(load_model(checkpoint), min_interval=0.0)
    incoming = frame((220, 30, 30))
    assert predictor(incoming) is incoming  # the video the student sees is their own camera
    result, error = predictor.latest()
    assert error is None
    assert set(result.predictions) == {"shape", "color"}
    assert all(p["kind"] == "classification" and p["class"] for p in result.predictions.values())
    assert result.x.shape[-1] == result.x.shape[-2]  # preprocessed like the run's dataset
    predictor(frame((30, 30, 220)))
    assert predictor.latest()[0].frames == 2  # a new frame, a new prediction


def test_frames_faster_than_the_limit_are_skipped_not_queued(trained):
    """A 30-frames-a-second camera must not make a shared server predict 30 times a second."""
    _, _, checkpoint = trained
    predictor = LivePrediction(load_model(checkpoint), min_interval=3600.0)
    for _ in range(5):
        predictor(frame((220, 30, 30)))
    assert predictor.latest()[0].frames == 1


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_live_camera_in_the_browser_keeps_updating_the_predictions(trained, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pytest.importorskip("streamlit_webrtc", reason="streamlit-webrtc is not installed")
    from test_e2e_browser import shot

    home, run_id, _ = trained
    with serve_app(home, tmp_path / "streamlit.log") as base:
        with sync_api.sync_playwright() as playwright:
            # Chromium's fake camera streams a moving test pattern, and its fake prompt allows it.
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                *BROWSER_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
            try:
                context = chromium.new_context(viewport={"width": 1400, "height": 900},
                                               permissions=["camera"])
                page = context.new_page()
                page.goto(f"{base}/predict?run={run_id}", timeout=LIMIT_MS)
                page.get_by_text("Live camera", exact=True).click(timeout=LIMIT_MS)
                webrtc = page.frame_locator("iframe[title*='streamlit_webrtc']")
                webrtc.get_by_role("button", name=re.compile("start", re.I)).click(timeout=LIMIT_MS)
                counter = re.compile(r"Frame (\d+) predicted")

                def frames_predicted() -> int:
                    found = counter.search(page.inner_text("body"))
                    return int(found.group(1)) if found else 0

                deadline = time.monotonic() + LIMIT_MS / 1000
                while frames_predicted() < 1 and time.monotonic() < deadline:
                    page.wait_for_timeout(500)
                first = frames_predicted()
                assert first >= 1, "no camera frame reached the model"
                while not all(f"{task}:" in page.inner_text("body") for task in ("shape", "color")) \
                        and time.monotonic() < deadline:
                    page.wait_for_timeout(500)
                body = page.inner_text("body")
                assert "shape:" in body and "color:" in body  # every task's prediction is shown
                while frames_predicted() <= first and time.monotonic() < deadline:
                    page.wait_for_timeout(500)
                assert frames_predicted() > first, "the predictions stopped following the camera"
                shot(page, "predict_live_camera.png")
            finally:
                chromium.close()
