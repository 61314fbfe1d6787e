"""The lesson box on the Train page: the guided lesson's step, its question and the Next button.

    from ui.lesson_box import lesson_box, current_lesson
    lesson_box()                      # right under the page title
    runner.submit(..., lesson=current_lesson())

A lesson link (``?lesson=<id>&step=<n>`` plus the step's settings, made by
the Learn page or the "Share as a lesson" panel) opens the lesson; the
session remembers it, so the lesson survives the page rewriting its URL,
until the student presses "Leave the lesson". Next and Back open the other
step's link, which puts that step's settings into the controls. Answers go
to the store (one per student and step) and the class board counts them.
"""
from __future__ import annotations

import streamlit as st

from mtlcore.lessons import (LESSON_PARAM, STEP_PARAM, GoalError, Lesson, LessonError, LessonRoom, describe,
                             find_lesson, lesson_tasks, parse_goal)
from mtlcore.runs import StoreError
from ui.safe_text import md, say
from ui.session import get_store, owner

K = "lesson_"
ACTIVE, STEP = f"{K}active", f"{K}step"
TRAIN_CONFIG = "train_config"  # the Train page's configuration in the session (views/train.py)
ss = st.session_state


def current_lesson() -> str | None:
    """The id of the lesson this session is in (what a run started now carries), or None."""
    _adopt_link()
    return ss.get(ACTIVE)


def _adopt_link() -> None:
    """Take the lesson and step from the address when it names one (a lesson link, Next, Back)."""
    params = st.query_params
    lesson = params.get(LESSON_PARAM)
    if lesson:
        ss[ACTIVE] = str(lesson)[:80]
        try:
            ss[STEP] = max(1, int(params.get(STEP_PARAM, ss.get(STEP, 1))))
        except (TypeError, ValueError):
            ss[STEP] = 1


def built_in(lesson_id: str) -> Lesson | None:
    try:
        return find_lesson(lesson_id)
    except LessonError as error:  # a teacher's broken lesson file: say which, keep the page working
        say("warning", str(error))
        return None


def go_to_step(lesson: Lesson, number: int) -> None:
    """Button callback: open step ``number`` (its settings, hidden and locked controls) on this page.

    The student's seed goes along unless the step sets one, so that a class whose students chose
    different seeds compares each multi-task run with the baselines of the same seed.
    """
    params = lesson.link_params(number)
    seed = getattr(ss.get(TRAIN_CONFIG), "seed", 0)
    if "seed" not in lesson.step_settings(number) and seed:
        params["seed"] = str(seed)
    st.query_params.from_dict(params)
    ss[STEP] = number


def leave() -> None:
    """Button callback: back to the plain Train page (the settings stay as they are)."""
    ss.pop(ACTIVE, None)
    ss.pop(STEP, None)
    for key in list(st.query_params):
        if key in (LESSON_PARAM, STEP_PARAM, "hide", "lock", "explain"):
            del st.query_params[key]


def save_answer(lesson_id: str, number: int, key: str) -> None:
    """Button callback: keep the student's answer (the class board counts it)."""
    choice = ss.get(key)
    try:
        LessonRoom(get_store()).answer(lesson_id, number, choice or "", by=owner())
        ss[f"{K}notice"] = ("success", "Answer saved; the class board counts it.")
    except (ValueError, StoreError) as error:
        ss[f"{K}notice"] = ("error", str(error))


def lesson_box() -> None:
    """Draw the lesson's step (nothing outside a lesson)."""
    lesson_id = current_lesson()
    if not lesson_id:
        return
    try:
        room = LessonRoom(get_store())
        shared = room.shared(lesson_id)
        closed = room.is_closed(lesson_id)
    except StoreError as error:
        say("warning", str(error))
        return
    lesson = built_in(lesson_id)
    if lesson is None and shared is None:
        say("warning", f"This link names the lesson {lesson_id!r}, which this app does not have; the settings of "
                       "the link are used, but no lesson is shown.")
        ss.pop(ACTIVE, None)
        return
    with st.container(border=True, key=f"{K}box"):
        if lesson is None:
            st.markdown(f"#### 📘 Lesson: {md(shared.title)}")
            if shared.goal:
                st.markdown(f"**Class goal:** {md(goal_text(shared.goal))}")
        else:
            step_box(lesson, room)
        if closed:
            say("warning", "The teacher has closed this lesson: Start is refused until it is reopened.")
        st.button("Leave the lesson", key=f"{K}leave", on_click=leave)
    notice = ss.pop(f"{K}notice", None)
    if notice:
        say(notice[0], notice[1])


def goal_text(goal: str, lesson: Lesson | None = None) -> str:
    try:
        return describe(parse_goal(goal, lesson_tasks(lesson) if lesson else None))
    except GoalError:
        return goal


def step_box(lesson: Lesson, room: LessonRoom) -> None:
    number = min(max(int(ss.get(STEP, 1)), 1), len(lesson.steps))
    step = lesson.step(number)
    st.markdown(f"#### 📘 {md(lesson.title)} · step {number} of {len(lesson.steps)}")
    st.markdown(md(step.text))
    st.caption(f"Class goal: {md(goal_text(lesson.goal, lesson))}")
    if step.question:
        st.markdown(f"**Question:** {md(step.question)}")
        mine = room.my_answer(lesson.id, number, by=owner())
        if step.choices:
            key = f"{K}choice_{lesson.id}_{number}"
            if key not in ss and mine in step.choices:
                ss[key] = mine
            st.radio("Your answer (measure it first: press Start)", list(step.choices), key=key, index=None)
            st.button("Save my answer", key=f"{K}answer", on_click=save_answer, args=(lesson.id, number, key))
        if mine and step.answer:
            st.info(f"You answered: {md(mine)}. What the lesson's author measured: {md(step.answer)}")
    back, forward = st.columns(2)
    back.button("◀ Back", key=f"{K}back", disabled=number <= 1, on_click=go_to_step, args=(lesson, number - 1),
                width="stretch")
    forward.button("Next ▶", key=f"{K}next", disabled=number >= len(lesson.steps), on_click=go_to_step,
                   args=(lesson, number + 1), type="primary", width="stretch")
