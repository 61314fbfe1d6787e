"""In a real browser: user text never runs as script, and a name typed in another browser borrows nothing.

Two breaks found by attacking a fresh install, as a hostile student would:

- a run's label and owner were put into ``st.markdown(..., unsafe_allow_html=True)``
  on the Train page, so a label like ``<iframe srcdoc="<script>...">`` ran
  script in the app's origin for everyone who opened the run;
- typing someone's name in the sidebar enabled Stop on their runs.

Drives Debian's headless Chromium with Playwright, like tests/test_e2e_browser.py
(whose server and browser fixtures it reuses); skipped where either is missing.
"""
from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest

from test_e2e_browser import CHROMIUM, app_url, browser, sync_api  # noqa: F401  (fixtures)

from mtlcore.config import ExperimentConfig

# Each payload would set window.top.__pwned (or the title) if the browser ran it as HTML.
LABEL = ('<iframe srcdoc="<script>window.top.__pwned=1;window.top.document.title=\'pwned\'</script>"></iframe>'
         '<style>*{display:none!important}</style>')
OWNER = "<img src=x onerror=top.__pwned=2>"  # 33 characters: within the sidebar's 40
LONG_RUN = ("dataset.name=shapes&tasks=shape,color&dataset.n_samples=300&train.epochs=500&train.batch_size=8"
            "&train.max_samples=100&device=cpu")
PWNED = "() => window.top.__pwned !== undefined || document.title === 'pwned'"


def queued_run(home, label: str, owner: str) -> str:
    """A run in the app's store, as if someone had started it with this label and name."""
    from mtlcore.runs import RunStore

    config = ExperimentConfig.from_flat({"dataset.name": "shapes", "tasks": "shape,color", "device": "cpu",
                                         "train.epochs": 1, "train.max_samples": 100, "dataset.n_samples": 300})
    return RunStore(home).add_run(config, label=label, owner=owner).id


def wait_for_app(page) -> None:
    """Until Streamlit has finished running the page's script (generous limits: a busy machine is slow)."""
    page.wait_for_selector("[data-testid=stApp]", timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')"
        " || !document.querySelector('[data-testid=stStatusWidget]').innerText.includes('Running')",
        timeout=120_000,
    )


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def type_name(page, name: str) -> None:
    """Type a name into the sidebar's name field, as a student does."""
    field = page.locator("[data-testid=stSidebar]").get_by_role("textbox", name="Your name")
    field.fill(name)
    field.press("Enter")
    time.sleep(0.5)
    wait_for_app(page)


def test_a_label_and_owner_that_carry_html_show_as_text_and_run_no_script(app_url, browser):
    base, home = app_url
    run_id = queued_run(home, LABEL, OWNER)
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(120_000)  # generous: a busy classroom server (or CI) renders slowly
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # The run's own page, Compare (which lists it), and a shared link that prefills the label field.
    for where in (f"/train?run={run_id}", "/compare", f"/train?run={run_id}&label={quote(LABEL)}"):
        page.goto(base + where)
        wait_for_app(page)
        if where.startswith("/train"):
            page.get_by_text(run_id).first.wait_for(state="attached")
        time.sleep(1.5)  # an iframe's script or an image's onerror would have run by now
        assert not page.evaluate(PWNED), f"script from user text ran on {where}"
        assert not dialogs, f"a dialog opened on {where}: {dialogs}"
        assert page.locator("[data-testid=stMain] iframe[srcdoc]").count() == 0
        assert page.locator("[data-testid=stMain] img[src=x]").count() == 0
        assert page.locator("[data-testid=stMain]").is_visible()  # the <style> hid nothing

    page.goto(f"{base}/train?run={run_id}")
    wait_for_app(page)
    page.get_by_text(run_id).first.wait_for()
    text = main_text(page)
    assert LABEL in text, f"the label is not shown as typed:\n{text[:2000]}"
    assert OWNER in text, f"the owner is not shown as typed:\n{text[:2000]}"


def test_a_second_browser_with_the_same_name_cannot_stop_the_first_ones_run(app_url, browser):
    base, home = app_url
    from mtlcore.runs import Runner, RunStore

    first = browser.new_context(viewport={"width": 1400, "height": 1600})
    second = browser.new_context(viewport={"width": 1400, "height": 1600})  # another student's browser
    run_id = None
    try:
        alice = first.new_page()
        alice.set_default_timeout(120_000)  # generous: a busy classroom server (or CI) renders slowly
        alice.goto(f"{base}/train?{LONG_RUN}")
        wait_for_app(alice)
        type_name(alice, "alice")
        alice.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.click()
        stop = alice.get_by_role("button", name=re.compile(r"Stop"))
        stop.wait_for()
        deadline = time.monotonic() + 30
        while not RunStore(home).list_runs() and time.monotonic() < deadline:
            time.sleep(0.2)
        (run,) = RunStore(home).list_runs()
        run_id = run.id
        assert run.owner == "alice" and run.owner_key is not None

        mallory = second.new_page()
        mallory.set_default_timeout(120_000)  # generous: a busy classroom server (or CI) renders slowly
        mallory.goto(f"{base}/train?run={run_id}")
        wait_for_app(mallory)
        type_name(mallory, "alice")
        mallory.get_by_text(run_id).first.wait_for()
        assert mallory.get_by_role("button", name=re.compile(r"Stop")).is_disabled()
        # The refusal is under the live panel, drawn after the Stop button: wait for it, then read the page.
        mallory.get_by_text("Only alice can stop this run").first.wait_for()
        assert "Only alice can stop this run" in main_text(mallory)
        assert RunStore(home).get_run(run_id).is_active

        # The first browser, reloaded (a new session: its key comes back from the cookie), still may stop it,
        # even before it types its name again.
        alice.goto(f"{base}/train?run={run_id}")
        wait_for_app(alice)
        stop = alice.get_by_role("button", name=re.compile(r"Stop"))
        stop.wait_for()
        deadline = time.monotonic() + 30
        while stop.is_disabled() and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.click()
        deadline = time.monotonic() + 60
        while RunStore(home).get_run(run_id).is_active and time.monotonic() < deadline:
            time.sleep(0.2)
        assert RunStore(home).get_run(run_id).state in ("cancelled", "interrupted")
    finally:
        first.close()
        second.close()
        if run_id is not None:
            Runner(RunStore(home), max_workers=1).cancel(run_id)
