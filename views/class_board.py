"""Class board: every student's runs of one lesson, live, for the projector (issue #19 §3, §5).

One point per student on the lesson's two tasks (their best finished run)
with the class's Pareto front, a table ranked by the lesson's goal with each
run's name and state, and how many students gave each answer. In teacher
mode: stop every run of the lesson, close it to new runs (or reopen it), and
download its results as CSV. Large type and high contrast: readable at
1024x768 from the back of the room.
"""
from __future__ import annotations

import streamlit as st

from mtlcore.charts.class_board import answers_figure, class_board_figure
from mtlcore.lessons import (LessonRoom, answer_shares, axes, board_choices, board_lesson, board_rows, describe,
                             export_csv, pareto_front, student_points, table)
from mtlcore.runs import NotOwnerError, StoreError
from ui.page import header, notice
from ui.safe_text import md, say
from ui.session import get_runner, get_store, is_teacher, owner

K = "board_"
POLL_SECONDS = 3
ss = st.session_state

# Constant CSS (no user text): larger type and darker text on this page only, for a projector.
st.html("<style>.stMainBlockContainer p, .stMainBlockContainer li, .stMainBlockContainer label "
        "{font-size: 1.35rem !important; color: #000 !important;} "
        ".stMainBlockContainer [data-testid='stDataFrame'] {font-size: 1.2rem;}</style>")

header("📺 Class board")
room = LessonRoom(get_store())
choices = board_choices(room)
wanted = st.query_params.get("lesson")
if wanted and wanted not in choices:
    choices[wanted] = wanted
if not choices:
    st.info("No lesson yet: open one on the Learn page, or make a lesson link with “Share as a lesson” on Train.")
    st.stop()
if wanted and ss.get(f"{K}opened") != wanted:  # a link to a lesson's board (first load, or another lesson)
    ss[f"{K}lesson"] = ss[f"{K}opened"] = wanted
lesson_id = st.selectbox("Lesson", list(choices), format_func=choices.get, key=f"{K}lesson")
if st.query_params.get("lesson") != lesson_id:
    st.query_params["lesson"] = ss[f"{K}opened"] = lesson_id


def teacher_action(action: str) -> None:
    """Button callback: stop every run, close or reopen the lesson (the teacher only)."""
    try:
        if action == "stop":
            message = room.stop_all(lesson_id, get_runner(), by=owner())
        elif action == "close":
            message = room.close(lesson_id, by=owner())
        else:
            message = room.reopen(lesson_id, by=owner())
        ss[f"{K}notice"] = ("success", message)
    except (NotOwnerError, StoreError) as error:
        ss[f"{K}notice"] = ("error", str(error))


@st.fragment(run_every=POLL_SECONDS)
def board() -> None:
    """The live part: redrawn every few seconds from the store."""
    store = get_store()
    try:
        runs = room.runs(lesson_id)
        everything = store.list_runs()
        lesson = board_lesson(lesson_id, room, runs)
    except StoreError as error:
        say("warning", str(error))
        return
    st.markdown(f"## {md(lesson.title)}")
    state = "closed to new runs" if lesson.closed else "open"
    st.markdown(f"**Goal:** {md(describe(lesson.goal))} · **{len(runs)} runs** by "
                f"**{len({(r.owner_key or r.owner) for r in runs})} students** · lesson {state}")
    rows = board_rows(runs, lesson.goal, everything)
    pair = axes(lesson.goal, list(lesson.tasks))
    if pair is not None:
        x, y = pair
        points = student_points(rows, x, y)
        if points:
            values = [(p.student, p.value(x), p.value(y)) for p in points]
            front = pareto_front([(v[1], v[2]) for v in values], lesson.tasks[x][1], lesson.tasks[y][1])
            st.plotly_chart(class_board_figure(values, (x, lesson.tasks[x][0]), (y, lesson.tasks[y][0]), front,
                                               uirevision=lesson_id), key=f"{K}chart")
        else:
            st.caption(f"The chart shows each student's best finished run on {x} and {y}: none has finished yet.")
    metrics = {task: metric for task, (metric, _) in lesson.tasks.items()}
    if rows:
        st.dataframe(table(rows, lesson.goal, metrics), hide_index=True, width="stretch", key=f"{K}table")
    else:
        st.info("No run of this lesson yet: runs started from the lesson's link appear here as they queue.")
    counts = room.answers(lesson_id)
    for step, (question, options) in lesson.questions.items():
        shares = answer_shares(counts.get(step, {}), options)
        if any(n for _, n in shares):
            st.plotly_chart(answers_figure(f"Step {step}: {question}", shares, uirevision=f"{lesson_id}-{step}"),
                            key=f"{K}answers_{step}")
    ss[f"{K}csv"] = export_csv(rows, lesson.goal, metrics)


board()

with st.container(border=True):
    if is_teacher():
        st.markdown("**Teacher controls**")
        a, b, c = st.columns(3)
        a.button("⏹ Stop every run of this lesson", key=f"{K}stop", on_click=teacher_action, args=("stop",),
                 width="stretch")
        if room.is_closed(lesson_id):
            b.button("🔓 Reopen the lesson", key=f"{K}reopen", on_click=teacher_action, args=("reopen",),
                     width="stretch")
        else:
            b.button("🔒 Close the lesson to new runs", key=f"{K}close", on_click=teacher_action, args=("close",),
                     width="stretch")
        c.download_button("⬇ Results as CSV", ss.get(f"{K}csv", ""), file_name=f"lesson-{lesson_id}.csv",
                          mime="text/csv", key=f"{K}export", width="stretch")
    else:
        st.caption("Teacher controls (stop every run of the lesson, close it, export its results) appear in "
                   "teacher mode: type the teacher password in the sidebar. A student stops only their own runs, "
                   "on Train.")
    notice(f"{K}notice")
