"""The lesson box on Train, the Learn page's lessons and the class board, as a student and a teacher use them
(Streamlit's AppTest, no browser). Nothing trains: a closed lesson refuses Start before anything is queued.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore.config import TrainConfig
from mtlcore.lessons import LessonRoom, find_lesson
from mtlcore.owners import Owner
from mtlcore.runs import Runner, RunStore

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classroom") / "home"
    previous = os.environ.get("MTL_HOME")
    os.environ["MTL_HOME"] = str(folder)
    st.cache_resource.clear()
    yield folder
    Runner(RunStore(folder), max_workers=1).stop_workers(timeout=10)
    st.cache_resource.clear()
    if previous is None:
        os.environ.pop("MTL_HOME", None)
    else:
        os.environ["MTL_HOME"] = previous


def open_page(page: str, params: dict | None = None, owner: str = "sam") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["owner"] = owner
    at.run()
    at.switch_page(page)
    if params:
        at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at) -> str:
    """The page's text as a person reads it (Markdown's escaping backslashes removed)."""
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error]).replace("\\", "")


def ticked(at) -> set[str]:
    return {c.key.rsplit("__", 1)[-1] for c in at.checkbox if c.key and "task__" in c.key and c.value}


def test_a_lesson_link_opens_its_step_and_next_moves_to_the_next_steps_settings(home):
    lesson = find_lesson("sharing")
    at = open_page("views/train.py", lesson.link_params(1))
    assert f"{lesson.title} · step 1 of {len(lesson.steps)}" in texts(at)
    assert lesson.steps[0].question in texts(at)
    assert ticked(at) == {"shape"}
    at.radio(key="lesson_choice_sharing_1").set_value(lesson.steps[0].choices[0]).run()
    at.button(key="lesson_answer").click().run()
    assert LessonRoom(RunStore(home)).answers("sharing") == {1: {lesson.steps[0].choices[0]: 1}}
    assert lesson.steps[0].answer in texts(at)  # the author's measured answer, once the student answered
    at.button(key="lesson_next").click().run()
    assert not at.exception, at.exception
    assert f"step 2 of {len(lesson.steps)}" in texts(at)
    assert ticked(at) == set(lesson.step_config(2).tasks)


def test_start_in_a_closed_lesson_is_refused_with_one_sentence_and_queues_nothing(home):
    LessonRoom(RunStore(home)).close("unrelated", by=Owner("teacher", role="teacher"))
    at = open_page("views/train.py", find_lesson("unrelated").link_params(1), owner="closed-lesson student")
    assert "The teacher has closed this lesson" in texts(at)
    at.button(key="train_start").click().run()
    assert "closed the lesson 'unrelated', so it takes no new runs" in texts(at)
    assert not [r for r in RunStore(home).list_runs() if r.owner == "closed-lesson student"]


def test_learn_lists_every_lesson_and_the_board_names_the_lessons_goal(home):
    at = open_page("views/learn.py")
    assert "Guided lessons" in [h.value for h in at.header]
    shown = texts(at)
    for lesson_id in ("sharing", "unrelated", "relatedness", "weights"):
        assert find_lesson(lesson_id).title in shown
    board = open_page("views/class_board.py", {"lesson": "sharing"})
    text = texts(board)
    assert find_lesson("sharing").title in text and "highest shape accuracy" in text
    assert "Teacher controls" in text  # the caption that says where they are, for a student
    assert not [b for b in board.button if b.key == "board_stop"]  # no stop button outside teacher mode


def test_the_teachers_stop_button_on_the_board_stops_every_run_of_the_lesson(home):
    store = RunStore(home)
    runner = Runner(store, max_workers=0)
    config = dataclasses.replace(find_lesson("weights").step_config(1), train=TrainConfig(epochs=1000))  # still training
    for key in "bc":  # two students who typed the same name
        runner.submit(config, owner=Owner.from_key("sam", key * 24), lesson="weights")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["owner"] = "teacher"
    at.session_state["teacher"] = True
    at.run()
    at.switch_page("views/class_board.py")
    at.query_params["lesson"] = "weights"
    at.run()
    at.button(key="board_stop").click().run()
    assert not at.exception, at.exception
    assert "Stopping 2 runs of lesson weights" in texts(at) + " ".join(s.value for s in at.success).replace("\\", "")
    assert {r.state for r in LessonRoom(store).runs("weights")} <= {"cancelled", "interrupted"}
