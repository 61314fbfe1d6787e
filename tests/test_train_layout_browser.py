"""The Train page at a projector's 1024x768 and a phone's 390x844 (issue 16, section 3), in a real browser.

Uses the app fixture of ``test_e2e_browser`` (``streamlit run app.py`` with its
own data folder; Debian's headless Chromium through Playwright), skipped with
the reason where either is missing. Positions are measured from bounding
boxes on the first screen, before any scrolling; no timing assertions.
Screenshots go to ``test-artifacts/layout/``.
"""
from __future__ import annotations

import contextlib
import re

import pytest

from test_e2e_browser import ARTIFACTS, app_url, browser, wait_for_app  # noqa: F401  (fixtures)

sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 120_000  # a busy machine takes many seconds per rerun

# The accessible header cells of Streamlit's data grid: it lists only the columns that are drawn in view.
GRID_HEADERS = """() => Array.from(document.querySelectorAll('[data-testid=stDataFrame] th, '
    + '[data-testid=stDataFrame] [role=columnheader]')).map(cell => cell.innerText.trim())"""
# What the browser shows at the centre of Start: the button itself, not a sidebar drawn over it.
START_ON_TOP = """(button) => {
    const box = button.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return !!hit && button.contains(hit);
}"""


@pytest.fixture
def no_workers(monkeypatch):
    monkeypatch.setenv("MTL_WORKERS", "0")  # the finished run is made up; nothing needs to train


def finished_run(home) -> str:
    from mtlcore import ExperimentConfig
    from mtlcore.runs import RunStore

    config = ExperimentConfig.from_flat({"tasks": "shape,color,size", "train.epochs": "1", "train.max_samples": "60"})
    store = RunStore(home)
    record = store.add_run(config, label="projector check", owner="teacher")
    store.claim_runs("a test, not a worker", [record.id])
    tasks = {"shape": {"kind": "classification", "num_classes": 4, "metric": "accuracy"},
             "color": {"kind": "classification", "num_classes": 4, "metric": "accuracy"},
             "size": {"kind": "regression", "metric": "mae", "unit": "px"}}
    test = {"shape": {"accuracy": 0.81}, "color": {"accuracy": 0.97}, "size": {"mae": 0.6}}
    store.finish_run(record.id, "finished", summary={"tasks": tasks, "test": test, "val": test})
    return record.id


@pytest.mark.parametrize("width,height", [(1024, 768), (390, 844)])
def test_start_is_on_the_first_screen_and_the_results_keep_their_test_column(no_workers, app_url, browser,  # noqa: F811
                                                                              width, height):
    base, home = app_url
    run_id = finished_run(home)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/train?run={run_id}")
    wait_for_app(page)
    page.get_by_text(run_id).first.wait_for(state="attached")
    page.wait_for_selector("[data-testid=stDataFrame]", state="attached")
    wait_for_app(page)
    ARTIFACTS.joinpath("layout").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "layout" / f"test-train-{width}x{height}.png"))

    start = page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first
    box = start.bounding_box()
    assert box is not None and box["height"] > 0, "Start is not drawn"
    assert 0 <= box["y"] and box["y"] + box["height"] <= height, (
        f"Start sits at y={box['y']:.0f} px, beyond the first {height} px of the screen")
    assert start.evaluate(START_ON_TOP), "something (the sidebar?) is drawn over Start"

    page.wait_for_function(f"() => ({GRID_HEADERS})().length > 0")
    headers = page.evaluate(GRID_HEADERS)
    assert "Test" in headers, f"the results table shows only {headers} at {width} px"


@contextlib.contextmanager
def your_running_run(page, base: str, home):
    """Press Start on Train in ``page`` (the run is this browser's), then train it in the test's stead: it is
    claimed and given 59 steps in the name of a process that only sleeps (no worker runs here; the fixture
    stops the data folder's workers afterwards, so not this test's own process). Yields the run's record and a
    function that beats the run's heartbeat (a slow test must, or the app takes the run for orphaned)."""
    import subprocess

    from mtlcore.runs import RunStore
    from mtlcore.runs.processes import worker_name

    page.goto(f"{base}/train?tasks=shape,color,size&train.epochs=10&device=cpu")
    wait_for_app(page)
    page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.click()
    store = RunStore(home)
    for _ in range(240):
        queued = store.list_runs(states=("queued",))
        if queued:
            break
        page.wait_for_timeout(250)
    [run] = queued
    stand_in = subprocess.Popen(["sleep", "600"])
    try:
        worker = worker_name(stand_in.pid)
        store.register_worker(worker, stand_in.pid)
        store.claim_runs(worker, [run.id])
        store.append_steps(run.id, [{"step": s, "epoch": 1, "t": 0.0,
                                     "loss": {t: 1.5 / (1 + s / 20) for t in run.config.tasks},
                                     "weight": {t: 1.0 for t in run.config.tasks}} for s in range(1, 60)], 0.1)
        store.heartbeat(worker, run.id)
        yield store.get_run(run.id), lambda: store.heartbeat(worker, run.id)
        store.cancel_run(run.id)
    finally:
        stand_in.kill()
        stand_in.wait()


def steering_slider(page, run_id: str, task: str):
    return page.locator(f".st-key-train_steer__{run_id}__loss_weights_{task}")


def test_at_1400x900_your_running_run_shows_start_its_live_chart_and_its_steering_on_the_first_screens(
        no_workers, app_url, browser):  # noqa: F811
    """The live chart whole on the first screen, the steering sliders under it (one scroll shows both)."""
    base, home = app_url
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    with your_running_run(page, base, home) as (run, beat):
        chart = page.locator(".st-key-train_chart_steps .js-plotly-plot")
        chart.wait_for()
        slider = steering_slider(page, run.id, "shape")
        slider.wait_for()
        beat()
        wait_for_app(page)
        ARTIFACTS.joinpath("layout").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "layout" / "test-train-running-1400x900.png"))

        start = page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.bounding_box()
        drawn = chart.bounding_box()
        assert start is not None and start["y"] + start["height"] <= 900
        assert drawn is not None and drawn["height"] > 100
        assert drawn["y"] + drawn["height"] <= 900, (
            f"the live chart ends at y={drawn['y'] + drawn['height']:.0f} px, below the first 900 px")
        steer = slider.bounding_box()
        assert steer is not None and steer["y"] > drawn["y"], "the steering sliders sit under the live chart"
        assert steer["y"] + steer["height"] - drawn["y"] <= 900, "one scroll shows the chart and a slider together"


def test_reloading_your_running_runs_page_or_turning_the_phone_steers_nothing(no_workers, app_url, browser):  # noqa: F811
    """A reloaded page once sent every steering control's default back as a move: weights 0, lr 1e-5."""
    from mtlcore.runs import RunStore, steering

    base, home = app_url
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    with your_running_run(page, base, home) as (run, beat):
        store = RunStore(home)
        for width, height in ((1400, 900), (1400, 900), (390, 844), (844, 390)):
            beat()
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{base}/train?run={run.id}")
            steering_slider(page, run.id, "shape").wait_for(state="attached")
            wait_for_app(page)
            page.wait_for_timeout(3000)  # the live panel polls every second: a sent value would be taken by now
            assert steering.events(store, run.id) == [], (width, height, steering.events(store, run.id))
        texts = steering_slider(page, run.id, "color").inner_text()
        assert "1.00" in texts, texts
