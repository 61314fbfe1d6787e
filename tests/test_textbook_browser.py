"""The app's side of the textbook items: the mtl-vs-ensemble study on Studies, an ensemble's votes and
the reconstruction preview on Predict.

Twice: with Streamlit's AppTest (widgets, tables and texts, checked in detail), and in a real
browser (Debian's Chromium through Playwright, skipped where it is missing) that loads the pages as
a student would. Every run is real: a study on tiny digits settings is trained member by member with
the worker's own ``train_one`` before either looks.
"""
import io
import sys
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from mtlcore import ExperimentConfig
from mtlcore.runs import Runner, RunStore
from mtlcore.runs.processes import worker_name
from mtlcore.runs.worker import train_one
from mtlcore.studies import StudySpec, StudyStore, default_base

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the pages import ui.session from the project root
STUDIES, PREDICT = str(ROOT / "views" / "studies.py"), str(ROOT / "views" / "predict.py")
TINY = {"train.epochs": 1, "train.max_samples": 200, "device": "cpu"}


def train_queued(store: RunStore, studies: StudyStore, runner: Runner) -> None:
    """Play the worker: train every queued run, moving the studies on, until nothing waits."""
    while True:
        studies.advance_all(runner)
        claimed = store.claim_next(worker_name())
        if claimed is None:
            return
        assert train_one(store, claimed) == "finished"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("textbook") / "home"
    store = RunStore(home)
    runner = Runner(store, max_workers=0, queue_cap_per_owner=100)
    studies = StudyStore(store)
    base = ExperimentConfig.from_flat({k: str(v) for k, v in TINY.items()}, default_base("mtl-vs-ensemble"))
    study = studies.start(StudySpec("mtl-vs-ensemble", base, seeds=1, ensemble=3), runner, owner="teacher")
    train_queued(store, studies, runner)
    config = ExperimentConfig.from_flat({"dataset.name": "digits", "tasks": "digit,reconstruction",
                                         **{k: str(v) for k, v in TINY.items()}})
    run_id = store.add_run(config, label="autoencoder", owner="teacher").id
    assert train_one(store, store.claim_next(worker_name())) == "finished"
    assert studies.get(study.id).state == "finished"
    return home, study.id, run_id


@pytest.fixture
def app_home(home, monkeypatch):
    import ui.session

    path = home[0]
    monkeypatch.setenv("MTL_HOME", str(path))
    monkeypatch.setattr(ui.session, "get_runner", lambda: Runner(RunStore(path), max_workers=0))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield home
    st.cache_resource.clear()


def digit_png() -> bytes:
    image = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(image).line((32, 8, 32, 56), fill=0, width=8)  # a "1"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_the_studies_page_offers_the_ensemble_study_and_shows_its_table_and_budgets(app_home):
    _, study_id, _ = app_home
    at = AppTest.from_file(STUDIES, default_timeout=120)
    at.run()
    at.radio(key="studies_kind").set_value("mtl-vs-ensemble").run()
    assert not at.exception and not at.error
    assert "bootstrap sample" in texts(at.markdown)
    assert at.slider(key="studies_ensemble").value == 5
    picker = next(box for box in at.selectbox if box.label == "Study")  # its key changes with its labels
    picker.set_value(study_id).run()
    assert not at.exception
    tables = {i: df.value for i, df in enumerate(at.dataframe)}
    result = next(v for v in tables.values() if "ensemble mean" in v.columns)
    assert list(result["task"]) == ["digit", "parity"] and result["ensemble mean"].notna().all()
    budgets = next(v for v in tables.values() if "parameters" in v.columns)
    assert list(budgets["runs"]) == [1, 2, 6] and budgets["parameters"].notna().all()


def test_predict_shows_each_members_vote_next_to_the_average(app_home):
    at = AppTest.from_file(PREDICT, default_timeout=120)
    at.run()
    at.radio(key="predict_mode").set_value("An ensemble").run()
    assert not at.exception
    at.file_uploader(key="predict_upload").set_value(("one.png", digit_png(), "image/png"))
    at.run()
    assert not at.exception and not at.error
    summary = texts(at.markdown)
    assert "average of the members' probabilities says" in summary and "of 3 votes" in summary
    votes = next(df.value for df in at.dataframe if "vote" in df.value.columns)
    assert list(votes["member"]) == [1, 2, 3]


def test_predict_shows_the_reconstruction_beside_the_input(app_home):
    _, _, run_id = app_home
    at = AppTest.from_file(PREDICT, default_timeout=120)
    at.query_params["run"] = run_id
    at.run()
    at.file_uploader(key="predict_upload").set_value(("one.png", digit_png(), "image/png"))
    at.run()
    assert not at.exception and not at.error
    captions = [c for image in at.get("image") for c in image.captions]
    assert "Input" in captions and "Reconstruction" in captions
    assert "rebuilt from the shared features" in texts(at.markdown)


# ----- the same in a real browser (Debian's Chromium through Playwright), where one is installed --------

from helpers import BROWSER_ARGS, CHROMIUM, serve_app  # noqa: E402


@pytest.fixture
def served(home, tmp_path):
    """``streamlit run app.py`` on the trained data folder; stopped after."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium): the browser half is skipped.")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with serve_app(home[0], tmp_path / "streamlit.log", timeout=90) as base:
        yield base, home


def test_in_a_browser_the_ensemble_study_votes_and_the_reconstruction_show(served, tmp_path):
    from playwright.sync_api import sync_playwright

    base, (_, study_id, run_id) = served
    picture = tmp_path / "one.png"
    picture.write_bytes(digit_png())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            # Studies: the finished ensemble study is listed with its budgets.
            page.goto(f"{base}/studies")
            page.get_by_text("Parameter budgets and training time").wait_for(timeout=90_000)
            # Predict, an ensemble: every member's vote beside the average.
            page.goto(f"{base}/predict")
            page.get_by_text("An ensemble").click(timeout=60_000)
            page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
            page.locator("input[type=file]").first.set_input_files(str(picture))
            page.get_by_text("of 3 votes").wait_for(timeout=90_000)
            assert "average of the members' probabilities says" in page.locator("[data-testid=stMain]").inner_text()
            # Predict, a run with the reconstruction task: the rebuilt picture beside the input.
            page.goto(f"{base}/predict?run={run_id}")
            page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
            page.locator("input[type=file]").first.set_input_files(str(picture))
            page.get_by_text("rebuilt from the shared features").wait_for(timeout=90_000)
            # The pictures' captions arrive with the pictures, a moment after the text.
            page.get_by_text("Reconstruction", exact=True).wait_for(timeout=90_000)
            page.get_by_text("Input", exact=True).wait_for(timeout=90_000)
        finally:
            browser.close()
