"""Learn: the ideas behind every control, short, each with the paper it comes from."""
from __future__ import annotations

import streamlit as st

from mtlcore import ARCHITECTURES, WEIGHTINGS
from mtlcore.charts import architecture_figure
from ui.texts import LEARN_ORDER, SECTIONS

DIAGRAM_TASKS = ["task A", "task B"]
DIAGRAMS = {"sharing": ("hard", "soft"), "cross_stitch": ("cross_stitch",), "mmoe": ("mmoe",)}

st.title("📖 Learn")
st.markdown("Short explanations of everything the Train page lets you change. "
            "Each section ends with the paper to read next.")

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
