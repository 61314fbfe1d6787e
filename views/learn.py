"""Learn: the guided lessons (lessons/*.toml), then the ideas behind every control, each with its paper."""
from __future__ import annotations

import streamlit as st

from mtlcore import ARCHITECTURES, WEIGHTINGS
from mtlcore.charts import architecture_figure
from mtlcore.lessons import LessonError, load_lessons
from ui.page import header
from ui.safe_text import md, say
from ui.texts import LEARN_ORDER, SECTIONS

DIAGRAM_TASKS = ["task A", "task B"]
DIAGRAMS = {"sharing": ("hard", "soft"), "cross_stitch": ("cross_stitch",), "mmoe": ("mmoe",)}

header("📖 Learn")
st.markdown("Short explanations of everything the Train page lets you change. "
            "Each section ends with the paper to read next.")

st.header("Guided lessons", anchor="lessons", divider="gray")
st.markdown("Each lesson opens Train with its settings, a few steps to follow, and a question you answer by "
            "measuring. Runs you start in a lesson appear on the **Class board** for the whole class.")
try:
    lessons = load_lessons()
except LessonError as error:  # a lesson file a teacher is writing: say which and what is wrong
    say("error", str(error))
    lessons = []
for lesson in lessons:
    with st.container(border=True, key=f"learn_lesson_{lesson.id}"):
        st.markdown(f"**{md(lesson.title)}** · {len(lesson.steps)} steps")
        if lesson.summary:
            st.markdown(md(lesson.summary))
        if lesson.measured:
            st.caption("Measured: " + md(lesson.measured))
        st.page_link("views/train.py", label="Open the lesson on Train", icon="▶️",
                     query_params=lesson.link_params(1))
st.page_link("views/class_board.py", label="Class board: everyone's runs of a lesson", icon="📺")

contents = " · ".join(f"[{SECTIONS[key].title}](#{key.replace('_', '-')})" for key in LEARN_ORDER)
st.caption(contents)

for key in LEARN_ORDER:
    section = SECTIONS[key]
    st.header(section.title, anchor=key.replace("_", "-"), divider="gray")
    text, picture = (st.columns([3, 2], gap="large") if key in DIAGRAMS else (st.container(), None))
    with text:
        st.markdown(section.body)
        if key == "weighting":
            st.markdown("\n".join(f"- **{name}** — {WEIGHTINGS.get(name).summary}" for name in WEIGHTINGS.names()))
        if key == "sharing":
            st.markdown("Architectures in this lab:\n\n" + "\n".join(
                f"- **{name}** — {ARCHITECTURES.get(name).summary}" for name in ARCHITECTURES.names()))
        if section.cite:
            st.caption("📚 " + section.cite.replace("\n", "  \n📚 "))
    if picture is not None:
        with picture:
            for arch in DIAGRAMS[key]:
                st.plotly_chart(architecture_figure(arch, DIAGRAM_TASKS, num_experts=3, title=arch.replace("_", "-")),
                                config={"staticPlot": True, "displayModeBar": False}, key=f"learn_{arch}")
