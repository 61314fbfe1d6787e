"""Bugs a teacher hit in class (issue 16), where they live: in a real browser.

Uses the app fixture of ``test_e2e_browser`` (``streamlit run app.py`` on a
free port with its own data folder; Debian's headless Chromium through
Playwright). Skipped, with the reason, where Chromium or Playwright is
missing. No timing assertions: waits only have generous limits.
"""
from __future__ import annotations

import re

import pytest

from helpers import choose_from_list
from test_e2e_browser import app_url, browser, shot, wait_for_app  # noqa: F401  (fixtures)

sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 60_000  # a busy machine takes many seconds per rerun


def home_page(browser, base: str):
    """A 1400x900 page on Home, once the app has made its store in the data folder (the test writes into it)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(base)
    wait_for_app(page)
    return page


def name_box(page):
    return page.locator("[data-testid=stSidebar]").get_by_role("textbox", name="Your name")


def type_name(page, name: str) -> None:
    box = name_box(page)
    box.fill(name)
    box.press("Enter")
    wait_for_app(page)


def choose_dataset(page, name: str) -> None:
    box = page.locator("[data-testid=stSelectbox]").filter(has_text="Dataset").first
    choose_from_list(page, box.click, page.get_by_role("option", name=re.compile(rf"^{name}\b")).first,
                     settle=wait_for_app)


def ticked_tasks(page) -> dict[str, bool]:
    main = page.locator("[data-testid=stMain]")
    return {task: main.get_by_role("checkbox", name=task, exact=True).is_checked()
            for task in ("shape", "color", "size")}


def weights(page) -> dict[str, float]:
    """The loss-weight sliders' values as the browser shows them (the number on the thumb)."""
    sliders = page.locator("[data-testid=stMain] [data-testid=stSlider]")
    found = {}
    for task in ("shape", "color", "size"):
        box = sliders.filter(has=page.get_by_text(task, exact=True)).first
        found[task] = float(box.get_by_test_id("stSliderThumbValue").first.inner_text())
    return found


def test_controls_show_the_defaults_after_name_digits_shapes(app_url, browser):  # noqa: F811
    base, _home = app_url
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/train")
    wait_for_app(page)
    for attempt in range(3):
        type_name(page, f"teacher {attempt}")
        choose_dataset(page, "digits")
        choose_dataset(page, "shapes")
        page.get_by_role("checkbox", name="shape", exact=True).wait_for()
        assert ticked_tasks(page) == {"shape": True, "color": True, "size": True}, attempt
        assert weights(page) == {"shape": 1.0, "color": 1.0, "size": 1.0}, attempt
        assert not page.get_by_role("button", name=re.compile(r"Start")).first.is_disabled()
    shot(page, "teacher-train-controls.png")


def test_the_name_survives_a_preset_and_a_reload(app_url, browser):  # noqa: F811
    base, _home = app_url
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(base)
    wait_for_app(page)
    type_name(page, "Ms Rivera")
    page.get_by_role("button", name=re.compile("Open in Train")).first.click()
    page.get_by_role("heading", name=re.compile("Train")).first.wait_for()
    wait_for_app(page)
    assert name_box(page).input_value() == "Ms Rivera"
    page.wait_for_function("() => document.cookie.includes('mtl_lab_name=Ms%20Rivera')")
    page.reload()
    wait_for_app(page)
    name_box(page).wait_for()
    assert name_box(page).input_value() == "Ms Rivera"
    context.close()


@pytest.fixture
def no_workers(monkeypatch):
    """The app starts no background worker: the test itself ends the runs, when it chooses."""
    monkeypatch.setenv("MTL_WORKERS", "0")


PICKER_TEXT = """() => {
    const box = Array.from(document.querySelectorAll('[data-testid=stSelectbox]'))
        .find(el => el.innerText.trim().startsWith('Study'));
    if (!box) return '';
    return box.innerText + ' ' + Array.from(box.querySelectorAll('input')).map(i => i.value).join(' ');
}"""


def test_the_studies_picker_follows_its_study_to_the_end_without_a_reload(no_workers, app_url, browser):  # noqa: F811
    from mtlcore import ExperimentConfig
    from mtlcore.runs import RunStore
    from mtlcore.studies import StudySpec, StudyStore

    base, home = app_url
    page = home_page(browser, base)
    store = RunStore(home)
    config = ExperimentConfig.from_flat({"tasks": "shape,color", "train.epochs": "1", "device": "cpu"})
    study = StudyStore(store).create(StudySpec("stl-vs-mtl", config, seeds=1), owner="teacher", label="tiny study")
    page.goto(f"{base}/studies")
    wait_for_app(page)
    page.wait_for_function(f"() => ({PICKER_TEXT})().includes('tiny study')")
    text = page.evaluate(PICKER_TEXT)
    assert "running" in text and f"0 of {study.total} runs done" in text, text
    # No reload from here on: the runs end, and the page (polling while a study runs) must say so.
    for _ in range(120):  # the page submits the study's runs as it looks at it; the test ends each one
        for run in store.list_runs(states=("queued",)):
            store.claim_runs("the test, not a worker", [run.id])
            store.finish_run(run.id, "finished", summary={"test": {t: {"accuracy": 0.5} for t in run.config.tasks}})
        if len(store.list_runs(states=("finished",))) >= study.total:
            break
        page.wait_for_timeout(500)
    page.wait_for_function(f"() => ({PICKER_TEXT})().includes('finished')", timeout=120_000)
    assert f"{study.total} of {study.total} runs done" in page.evaluate(PICKER_TEXT)


def test_compare_shows_the_baselines_it_queued_as_they_finish_without_a_reload(no_workers, app_url, browser):  # noqa: F811
    from mtlcore import ExperimentConfig
    from mtlcore.runs import RunStore

    base, home = app_url
    page = home_page(browser, base)
    store = RunStore(home)
    config = ExperimentConfig.from_flat({"tasks": "shape,color", "train.epochs": "1", "device": "cpu"})
    run = store.add_run(config, label="lesson 3", owner="teacher")
    store.claim_runs("the test, not a worker", [run.id])
    store.finish_run(run.id, "finished", summary={"test": {t: {"accuracy": 0.5} for t in config.tasks}})
    page.goto(f"{base}/compare?run={run.id}")
    wait_for_app(page)
    page.get_by_role("button", name=re.compile("Train missing single-task baselines")).click()
    page.get_by_text("They appear above as they train").wait_for()
    main = page.locator("[data-testid=stMain]")
    for _ in range(120):  # no reload: the test ends the baselines, the page must show them
        for queued in store.list_runs(states=("queued",)):
            store.claim_runs("the test, not a worker", [queued.id])
            store.finish_run(queued.id, "finished", summary={"test": {t: {"accuracy": 0.6} for t in queued.config.tasks}})
        if len(store.list_runs(states=("finished",))) >= 3:
            break
        page.wait_for_timeout(500)
    page.wait_for_function("() => (document.querySelector('[data-testid=stMain]').innerText.match("
                           "/vs single-task/g) || []).length >= 2", timeout=120_000)
    assert "no single-task baseline yet" not in main.inner_text()


def test_a_second_preset_does_not_show_the_previous_run(no_workers, app_url, browser):  # noqa: F811
    from mtlcore import ExperimentConfig
    from mtlcore.runs import RunStore

    base, home = app_url
    page = home_page(browser, base)
    store = RunStore(home)
    run_id = store.add_run(ExperimentConfig.from_flat({"train.epochs": "1", "train.max_samples": "50"}),
                           label="last lesson's run", owner="teacher").id
    store.cancel_run(run_id)
    page.goto(f"{base}/train?run={run_id}")
    wait_for_app(page)
    main = page.locator("[data-testid=stMain]")
    main.get_by_text("last lesson's run").first.wait_for()
    page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=re.compile("Home")).click()
    wait_for_app(page)
    page.get_by_role("button", name=re.compile("Open in Train")).nth(1).click()  # the second preset
    page.get_by_role("heading", name=re.compile("Train")).first.wait_for()
    wait_for_app(page)
    page.wait_for_function("() => !location.search.includes('run=')")
    page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.wait_for()
    assert "last lesson's run" not in main.inner_text()


def test_a_dataset_without_its_files_is_marked_and_start_says_what_to_do(app_url, browser):  # noqa: F811
    from mtlcore import list_datasets

    missing = next(d for d in list_datasets() if d.unavailable_reason() is not None)  # no torchvision files here
    base, _home = app_url
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/train")
    wait_for_app(page)
    page.locator("[data-testid=stSelectbox]").filter(has_text="Dataset").first.click()
    options = page.get_by_role("option")
    options.first.wait_for()
    listed = options.all_inner_texts()
    assert any(o.startswith(missing.name) and "files missing" in o for o in listed), listed
    assert any(o.strip() == "shapes" for o in listed), listed  # an embedded dataset carries no mark
    page.get_by_role("option", name=re.compile(rf"^{missing.name}\b")).first.click()
    wait_for_app(page)
    page.locator("[data-testid=stAlertContentError]").filter(has_text=missing.unavailable_reason()[:40]).wait_for()
    assert page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.is_disabled()
    shot(page, "teacher-missing-dataset.png")


def test_predict_opens_the_multi_task_run_and_warns_about_a_1x1_picture(no_workers, app_url, browser,  # noqa: F811
                                                                        tmp_path):
    import io

    from PIL import Image

    from mtlcore import ExperimentConfig
    from mtlcore.compare import baseline_config
    from mtlcore.runs import RunStore
    from mtlcore.runs.processes import worker_name
    from mtlcore.runs.worker import train_one

    base, home = app_url
    page = home_page(browser, base)
    store = RunStore(home)
    mtl = ExperimentConfig.from_flat({"tasks": "shape,color", "dataset.n_samples": "300", "train.epochs": "1",
                                      "train.max_samples": "40", "model.width": "8", "device": "cpu"})
    for config, label in ((mtl, "lesson"), (baseline_config(mtl, "shape"), "lesson · STL shape")):  # STL newest
        store.add_run(config, label=label, owner="teacher")
        assert train_one(store, store.claim_next(worker_name())) == "finished"
    page.goto(f"{base}/predict")
    wait_for_app(page)
    main = page.locator("[data-testid=stMain]")
    main.get_by_text(re.compile("Chosen for you: the newest finished multi-task run")).wait_for()
    run_picker = PICKER_TEXT.replace("'Study'", "'Run'")
    page.wait_for_function(f"() => ({run_picker})().includes('lesson')")  # drawn (widgets draw after the text)
    assert "STL" not in page.evaluate(run_picker)
    picture = tmp_path / "dot.png"
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    page.locator("input[type=file]").first.set_input_files(str(picture))
    main.get_by_text(re.compile(r"only 1 x 1 pixels")).wait_for()
    # It still answers, with the warning (drawn after it: wait for the answer, do not read at once).
    page.wait_for_function(r"() => /shape: \w+ \(\d+% sure\)/.test("
                           "document.querySelector('[data-testid=stMain]').innerText)")
    shot(page, "teacher-predict-1x1.png")
