"""End to end in a real browser: start a run on Train, watch its first point, predict with it.

Drives Debian's headless Chromium (``apt-get install chromium``) with
Playwright's Python package; no browser is downloaded. Skipped, with the
reason, where Chromium or Playwright is missing.

The app runs as a user would run it (``streamlit run app.py``) on a free
local port, with a temporary data folder (MTL_HOME), so the run trains in a
real background worker process. Screenshots of each page are saved under
``test-artifacts/``; the time from pressing Start to the first point on the
live chart is written to ``test-artifacts/e2e-timings.json``.
"""
from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from helpers import BROWSER_ARGS, CHROMIUM, free_port, serve_app, wait_until_healthy  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TRAIN_QUERY = ("dataset.name=shapes&tasks=shape,color&dataset.n_samples=300&train.epochs=2"
               "&train.max_samples=200&device=cpu")

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run the "
                "browser test.", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(pip install -r requirements-dev.txt)")
if not (ROOT / "app.py").exists():
    pytest.skip("app.py is not there yet: the browser test needs the whole app.", allow_module_level=True)


@pytest.fixture
def app_url(tmp_path):
    """``streamlit run app.py`` on a free port with its own data folder; stopped (and its workers) after."""
    home = tmp_path / "home"
    with serve_app(home, tmp_path / "streamlit.log", timeout=60) as base:
        yield base, home


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=BROWSER_ARGS,
        )
        try:
            yield chromium
        finally:
            chromium.close()


# JavaScript: how many data points all Plotly charts on the page hold (Plotly keeps them on the div).
COUNT_POINTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(div => (div.data || []).reduce((n, trace) => n + ((trace.x || trace.y || []).length || 0), 0))
    .reduce((a, b) => a + b, 0)"""


def wait_for_app(page) -> None:
    """Until Streamlit has finished running the page's script."""
    page.wait_for_selector("[data-testid=stApp]", timeout=30_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')"
        " || !document.querySelector('[data-testid=stStatusWidget]').innerText.includes('Running')",
        timeout=30_000,
    )


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def circle_png() -> bytes:
    image = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(image).ellipse((20, 20, 76, 76), fill=(220, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_start_a_run_watch_it_learn_and_predict_with_it(app_url, browser, tmp_path):
    app_url, home = app_url
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # --- Train: the config comes from the URL; press Start; wait for the live chart's first point.
    page.goto(f"{app_url}/train?{TRAIN_QUERY}")
    wait_for_app(page)
    start = page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first
    start.wait_for()
    points_before = page.evaluate(COUNT_POINTS)
    pressed, pressed_at = time.monotonic(), time.time()
    start.click()
    # The wait is generous (a loaded CI machine starts a worker slowly): how long it took is written to
    # e2e-timings.json and measured in benchmarks/, never asserted here.
    page.wait_for_function(f"() => ({COUNT_POINTS})() > {points_before}", timeout=300_000, polling=100)
    first_point = time.monotonic() - pressed
    time.sleep(1.5)  # a few more points, so that the screenshot shows lines
    shot(page, "e2e-train.png")
    # Where the time went, from the store's own clocks (same machine): queued, claimed, first step logged.
    from mtlcore.runs import RunStore
    store = RunStore(home)
    (run,) = store.list_runs()
    steps = store.step_metrics(run.id)
    timings = {
        "start_to_first_point_s": round(first_point, 2),
        "press_to_queued_s": round(run.created_at - pressed_at, 2),
        "queued_to_worker_claim_s": round((run.started_at or float("nan")) - run.created_at, 2),
        "claim_to_first_step_logged_s": round(steps[0]["t"] - (run.started_at or 0), 2) if steps else None,
        "first_step_logged_to_point_on_chart_s": round(pressed_at + first_point - steps[0]["t"], 2) if steps else None,
        "load_average_1min": os.getloadavg()[0],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "e2e-timings.json").write_text(json.dumps(timings, indent=1))
    print(f"Start to first point on the live chart: {first_point:.2f} s; {timings}")

    # --- Predict: the run's checkpoint appears at the end of its first epoch.
    page.goto(f"{app_url}/predict")
    deadline = time.monotonic() + 90
    while True:
        try:
            page.wait_for_selector("input[type=file]", state="attached", timeout=10_000)
            break
        except sync_api.TimeoutError:
            if time.monotonic() > deadline:
                shot(page, "e2e-predict-timeout.png")
                text = page.locator("[data-testid=stMain]").inner_text()
                raise AssertionError(f"Predict never offered an upload within 90 s; the page said:\n{text}") from None
            page.reload()  # no checkpoint yet: it is written at the end of the first epoch
    picture = tmp_path / "circle.png"
    picture.write_bytes(circle_png())
    page.locator("input[type=file]").first.set_input_files(str(picture))
    page.get_by_text("Prediction took").wait_for(timeout=30_000)
    text = page.locator("[data-testid=stMain]").inner_text()
    for task in ("shape", "color"):
        assert re.search(rf"{task}: \w+ \(\d+% sure\)", text), f"no prediction for {task} in:\n{text}"
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2")  # probability bars
    shot(page, "e2e-predict.png")

    # --- Compare: the run is listed with its curves.
    page.goto(f"{app_url}/compare")
    wait_for_app(page)
    page.get_by_role("button", name=re.compile("Train missing single-task baselines")).wait_for()
    assert "no single-task baseline yet" in page.locator("[data-testid=stMain]").inner_text()
    page.wait_for_function(f"() => ({COUNT_POINTS})() > 0", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')", timeout=30_000)
    time.sleep(1)
    shot(page, "e2e-compare.png")

    assert not errors, f"JavaScript errors in the page: {errors}"
    # A link straight to a page (as shared from Train) must still get app.py's navigation and sidebar.
    # (A folder named pages/ would make Streamlit run the page alone, without app.py.)
    nav = page.locator("[data-testid=stSidebarNav]").inner_text()
    assert "Predict" in nav and "Compare" in nav, (
        f"The sidebar lists {nav.split()!r}, not app.py's pages: a fresh server opened at /train ran the "
        "page without app.py."
    )
