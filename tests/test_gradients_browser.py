"""The Gradients page in a real browser: Start draws the paths, a click on the chart shows the arrows.

Uses the app fixture of ``test_e2e_browser.py`` (``streamlit run app.py``
on a free port, headless Chromium through Playwright; skipped where either
is missing). Few steps (1,000) and two cheap methods keep it short.
"""
from __future__ import annotations

import re

from helpers import ARROWS, ARROWS_TITLE, PATHS, POINTS_OF
from test_e2e_browser import app_url, browser, shot, sync_api, wait_for_app  # noqa: F401  (fixtures)


def test_start_draws_the_paths_and_a_click_shows_the_gradients_there(app_url, browser):
    base, _ = app_url
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/gradients?methods=equal,famo&steps=1000")
    wait_for_app(page)
    page.wait_for_function(f"() => ({ARROWS_TITLE})().includes('(-2.00, 2.00)')", timeout=180_000)
    assert page.evaluate(POINTS_OF, [PATHS, "equal"]) == 0  # nothing drawn before Start

    page.get_by_role("button", name=re.compile(r"Start")).click()
    page.wait_for_function(f"() => ({POINTS_OF})(['{PATHS}', 'equal']) > 0 && ({POINTS_OF})(['{PATHS}', 'famo']) > 0",
                           timeout=300_000, polling=250)
    # The caption under the chart comes in the same rerun as the paths, a moment after them: wait for it.
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]').innerText.includes('steps per start')",
                           timeout=60_000, polling=250)
    # Let the run end before clicking: while it runs, the chart is drawn anew every second, and a
    # click between mouse-down and mouse-up on a chart being replaced is lost (see the loop below).
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]').innerText.includes('finished · ')",
                           timeout=300_000, polling=500)
    shot(page, "gradients-trajectories.png")

    # Click the trajectories chart in its top-left quarter: the point under the cursor is inspected.
    chart = page.locator(".js-plotly-plot").filter(has_text="Paths on the average loss").first
    plot_area = chart.locator(".nsewdrag").first
    before = page.evaluate(ARROWS_TITLE)
    # A click that lands while the page is still redrawing the chart can be lost, as a person's would
    # be: click again, as they would, up to three times, each a little off the last one. (A second
    # click on the very point already selected would deselect it, and then nothing is inspected.)
    for attempt, (fx, fy) in enumerate(((0.25, 0.25), (0.22, 0.28), (0.28, 0.22))):
        box = None
        for _ in range(20):  # None while Plotly is replacing the chart's drag layer: look again once it is back
            plot_area.wait_for(state="visible")
            box = plot_area.bounding_box()
            if box is not None:
                break
        assert box is not None, "the paths chart never stayed on the page long enough to be clicked"
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        try:
            page.wait_for_function(f"(before) => ({ARROWS_TITLE})() !== before && ({ARROWS_TITLE})() !== ''",
                                   arg=before, timeout=60_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    after = page.evaluate(ARROWS_TITLE)
    x1, x2 = map(float, re.search(r"\(([-\d.]+), ([-\d.]+)\)", after).groups())
    assert x1 < 0 < x2, after  # the top-left of the square: x1 negative, x2 positive
    for name in ("task 1: -g1", "task 2: -g2", "equal", "famo"):
        assert page.evaluate(POINTS_OF, [ARROWS, name]) >= 2, f"no {name} arrow"
    assert "cosine(g1, g2)" in page.locator("[data-testid=stMain]").inner_text()
    shot(page, "gradients-arrows.png")
    assert not errors, f"JavaScript errors in the page: {errors}"
