"""In a real browser, a lesson as a class lives it (issue #19, "Done means").

The teacher builds a lesson link with hidden controls on Train; two
students (two browser contexts, so two private keys, who typed the same
name) open it and see only the allowed controls; both start runs; the class
board shows both; one student cannot stop the other's run although the name
is the same; the teacher stops every run of the lesson from the board.

Drives Debian's headless Chromium with Playwright, like tests/test_e2e_browser.py
(whose browser fixture and server helper it reuses); skipped where either is missing.
"""
from __future__ import annotations

import re
import time

import pytest

from helpers import choose_from_list, serve_app
from test_e2e_browser import ARTIFACTS, CHROMIUM, browser, sync_api  # noqa: F401  (fixtures)
from test_security_browser import main_text

PASSWORD = "lesson-teacher-pw"
# Long enough to be still training when the teacher stops it (tiny data, many epochs).
LESSON_SETUP = ("dataset.name=shapes&tasks=shape,color&dataset.n_samples=300&train.epochs=300&train.batch_size=8"
                "&train.max_samples=100&device=cpu")
SLOW = 300_000  # ms: a busy classroom server (or CI) renders slowly


@pytest.fixture
def classroom(tmp_path):
    """The app with a teacher password set, its own data folder and one worker (the second run waits in the
    queue, which keeps a loaded test machine responsive); stopped (and its worker) after."""
    home = tmp_path / "home"
    with serve_app(home, tmp_path / "streamlit.log", env={"MTL_TEACHER_PASSWORD": PASSWORD, "MTL_WORKERS": "1"}, timeout=90) as base:
        yield base, home


def wait_for_app(page) -> None:
    """Until Streamlit has drawn the page and finished its script (very generous: a class's server is busy)."""
    page.wait_for_selector("[data-testid=stApp]", timeout=300_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')"
        " || !document.querySelector('[data-testid=stStatusWidget]').innerText.includes('Running')",
        timeout=300_000,
    )


def type_name(page, name: str) -> None:
    """Type a name into the sidebar's name field, as a student does."""
    field = page.locator("[data-testid=stSidebar]").get_by_role("textbox", name="Your name")
    field.fill(name)
    field.press("Enter")
    time.sleep(0.5)
    wait_for_app(page)


def new_page(context):
    page = context.new_page()
    page.set_default_timeout(SLOW)
    return page


def all_text(page) -> str:
    """Every text of the page's main area, also in tabs not opened (what a student could find)."""
    return page.locator("[data-testid=stMain]").text_content() or ""


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the multiselect labelled ``label``."""
    box = page.locator("[data-testid=stMultiSelect]").filter(has_text=label).locator("input")

    def open_list():
        box.click()
        box.fill(option)

    choose_from_list(page, open_list, page.get_by_role("option", name=option, exact=True), settle=wait_for_app)
    page.keyboard.press("Escape")
    wait_for_app(page)


def become_teacher(page) -> None:
    sidebar = page.locator("[data-testid=stSidebar]")
    sidebar.get_by_text("🎓 Teacher").click()
    field = sidebar.get_by_label("Teacher password", exact=True)
    field.fill(PASSWORD)
    field.press("Enter")
    sidebar.get_by_text("Teacher mode: you may stop").wait_for(state="attached")  # in the expander, closed again


def wait_runs(home, count: int, deadline_s: float = 60):
    from mtlcore.runs import RunStore

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        runs = RunStore(home).list_runs()
        if len(runs) >= count:
            return runs
        time.sleep(0.3)
    raise AssertionError(f"expected {count} runs in the store, found {len(RunStore(home).list_runs())}")


def test_a_lesson_link_hides_controls_the_board_shows_both_students_and_the_teacher_stops_the_lesson(
        classroom, browser):
    base, home = classroom
    from mtlcore.lessons import LessonRoom
    from mtlcore.runs import Runner, RunStore

    contexts = [browser.new_context(viewport={"width": 1400, "height": 1600}) for _ in range(3)]
    teacher_context, first_context, second_context = contexts
    try:
        # The teacher sets up Train, hides the optimiser and regularisation, and makes the link.
        teacher = new_page(teacher_context)
        teacher.goto(f"{base}/train?{LESSON_SETUP}", wait_until="commit")
        wait_for_app(teacher)
        teacher.get_by_text("🔗 Share as a lesson").click()
        pick(teacher, "Hide from students", "Optimiser settings")
        pick(teacher, "Hide from students", "Regularisation")
        title = teacher.get_by_role("textbox", name="Lesson title")
        title.fill("Shape and colour")
        title.press("Enter")
        goal = teacher.get_by_role("textbox", name="Goal (optional: what the class board sorts by)")
        goal.fill("highest shape accuracy")
        goal.press("Enter")
        wait_for_app(teacher)
        teacher.get_by_role("button", name="Make the link").click()
        code = teacher.locator("[data-testid=stCode]").filter(has_text="/train?")
        code.wait_for()
        link = re.search(r"http\S+/train\?\S+", code.inner_text()).group(0)
        assert "hide=optim%2Creg" in link and "lesson=" in link
        lesson_id = re.search(r"lesson=([a-z0-9-]+)", link).group(1)

        # Two students with the same name open it: no optimiser or regularisation control anywhere.
        students = []
        for context in (first_context, second_context):
            page = new_page(context)
            page.goto(link, wait_until="commit")
            wait_for_app(page)
            type_name(page, "sam")
            page.get_by_text("Lesson: Shape and colour").first.wait_for()  # the page has drawn its lesson box
            page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.wait_for()
            page.get_by_text("Weighting method").first.wait_for(state="attached")  # and the settings' tabs,
            page.get_by_text("Seed", exact=True).first.wait_for(state="attached")  # the Training tab's too
            text = all_text(page)
            # Select boxes and toggles of the hidden sections (their labels are text; a slider's is not).
            for hidden in ("Optimiser", "Learning-rate schedule", "BatchNorm"):
                assert hidden not in text, f"{hidden!r} is shown to a student:\n{text[:3000]}"
            for shown in ("Seed", "Weighting method", "Architecture", "Shape and colour"):
                assert shown in text, f"{shown!r} is missing for a student:\n{text[:3000]}"
            students.append(page)
        for count, page in enumerate(students, 1):  # both press Start
            page.get_by_role("button", name=re.compile(r"^\W*Start", re.I)).first.click()
            wait_runs(home, count)
        runs = RunStore(home).list_runs()
        assert len(runs) == 2 and {r.owner for r in runs} == {"sam"} and len({r.owner_key for r in runs}) == 2
        room = LessonRoom(RunStore(home))
        assert sorted(room.run_ids(lesson_id)) == sorted(r.id for r in runs)  # both carry the lesson's id

        # The second student opens the first one's run: same name, another key, so no Stop.
        first_run = next(r for r in runs if r.created_at == min(x.created_at for x in runs))
        other = students[1]
        other.goto(f"{base}/train?run={first_run.id}", wait_until="commit")
        wait_for_app(other)
        other.get_by_text(first_run.id).first.wait_for()
        assert other.get_by_role("button", name=re.compile(r"Stop")).is_disabled()
        # The refusal is under the live panel, drawn after the Stop button: wait for it, then read the page.
        other.get_by_text("Only sam can stop this run").first.wait_for()
        assert "Only sam can stop this run" in main_text(other)
        assert RunStore(home).get_run(first_run.id).is_active

        # The class board shows both students' runs; the teacher stops the lesson there.
        teacher.goto(f"{base}/class_board?lesson={lesson_id}", wait_until="commit")
        wait_for_app(teacher)
        teacher.get_by_text("2 runs").first.wait_for()
        board = main_text(teacher)
        assert "Shape and colour" in board and "highest shape accuracy" in board
        ARTIFACTS.mkdir(exist_ok=True)
        teacher.set_viewport_size({"width": 1024, "height": 768})  # a classroom projector
        teacher.screenshot(path=str(ARTIFACTS / "class-board-1024x768.png"))
        become_teacher(teacher)
        wait_for_app(teacher)
        stop = teacher.get_by_role("button", name=re.compile("Stop every run of this lesson"))
        told = teacher.get_by_text(re.compile(r"Stopping 2 runs of lesson")).first
        for attempt in range(3):
            stop.click()
            try:
                told.wait_for(timeout=60_000)
                break
            except sync_api.TimeoutError:
                # A click that lands while the board redraws can be lost, as a person's can: they click again.
                # But runs stopped without a word to the teacher is a failure, not a lost click.
                assert any(r.is_active for r in room.runs(lesson_id)), "the runs stopped but the teacher was not told"
                if attempt == 2:
                    raise
        deadline = time.monotonic() + 120
        while any(r.is_active for r in room.runs(lesson_id)) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert {r.state for r in room.runs(lesson_id)} <= {"cancelled", "interrupted"}
    finally:
        for context in contexts:
            context.close()
        runner = Runner(RunStore(home), max_workers=1)
        for record in RunStore(home).list_runs(states=("queued", "running")):
            runner.cancel(record.id)
