"""In a real browser: move a task's weight slider while its run trains; the curve shows where, and the task's
loss goes its new way.

The run's twin (the same config and seed, queued from here, never steered)
trains the same steps up to the change, so the steered task's loss after it
is compared with what it would have been: with its weight at 0 the task is
no longer learned, and its loss stays above the twin's (shape: it is learned slowly, over the
whole run, so the twin's keeps falling).

Drives Debian's headless Chromium with Playwright's Python package, as the
other browser tests do (tests/helpers.py starts the app with its own data
folder and stops its workers afterwards).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from helpers import BROWSER_ARGS, CHROMIUM, serve_app, wait_for

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
# Long enough to be steered by a browser on a loaded machine (it is cancelled once it has shown the change).
TRAIN_QUERY = ("dataset.name=shapes&tasks=shape,color&dataset.n_samples=300&train.epochs=200"
               "&train.max_samples=200&train.batch_size=16&device=cpu")
AFTER = 150  # steps after the change that are compared with the twin's (the first few are skipped)

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser test.", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

# JavaScript: the text of every annotation of every Plotly chart on the page (the markers' labels).
ANNOTATIONS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .flatMap(div => ((div.layout || {}).annotations || []).map(a => a.text || ''))"""


def test_moving_a_weight_slider_during_a_run_marks_the_curve_and_changes_the_loss(tmp_path):
    from mtlcore.runs import Runner, RunStore, steering

    home = tmp_path / "home"
    with serve_app(home, tmp_path / "streamlit.log", timeout=90, env={"MTL_WORKERS": "2"}) as base, \
            sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = chromium.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(60_000)
        page.goto(f"{base}/train?{TRAIN_QUERY}")
        page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.click()

        store = RunStore(home)
        run = wait_for(lambda: next(iter(store.list_runs(states=["running"])), None), "the run to start", 120)
        twin = Runner(store, max_workers=0).submit(run.config, label="twin")  # same seed: the same steps
        slider = page.locator(f".st-key-train_steer__{run.id}__loss_weights_shape input[type=range]")  # visually hidden: attached
        try:
            slider.wait_for(state="attached", timeout=180_000)
        except sync_api.TimeoutError:
            page.screenshot(path=str(tmp_path / "no-slider.png"))
            raise AssertionError("No steering slider; the page said:\n"
                                 + page.locator("[data-testid=stMain]").inner_text()[:3000]) from None
        wait_for(lambda: store.step_metrics(run.id), "the first steps", 120)
        slider.focus()
        slider.press("Home")  # the slider to 0: the shape task is no longer trained

        # The marker appears on the live loss chart, labelled with the change.
        page.wait_for_function(f"() => ({ANNOTATIONS})().some(t => t.includes('shape ×0'))", timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "steering-marker.png"))
        [event] = [e for e in steering.applied(store, run.id) if e.key == "loss.weights.shape"]
        assert event.value == 0.0 and event.by == "anonymous"  # the sidebar's name: none typed

        # The loss goes another way than the unsteered twin's from the step of the change.
        enough = event.step + AFTER + 10
        wait_for(lambda: len(store.step_metrics(run.id)) >= enough, "steps after the change", 300)
        wait_for(lambda: len(store.step_metrics(twin)) >= enough, "the twin's steps", 300)
        for run_id in (run.id, twin):
            store.cancel_run(run_id)
        steered = {s["step"]: s for s in store.step_metrics(run.id)}
        alone = {s["step"]: s for s in store.step_metrics(twin)}
        after = range(event.step + 11, event.step + 11 + AFTER)
        assert all(steered[s]["weight"]["shape"] == 0.0 for s in after)
        mean = lambda logs: sum(logs[s]["loss"]["shape"] for s in after) / AFTER  # noqa: E731
        assert mean(steered) > mean(alone) * 1.1
        chromium.close()
