"""Home: what multi-task learning is, one picture, where to start, and ready-made experiments."""
from __future__ import annotations

import streamlit as st

from mtlcore.charts import architecture_figure
from ui.page import header
from ui.presets import PRESETS
from ui.texts import SECTIONS

DIAGRAM_TASKS = ["shape", "color", "size"]


def open_preset(index: int) -> None:
    """Open Train with the preset's settings in the URL (so the link can be shared)."""
    preset = PRESETS[index]
    st.session_state["train_force_url"] = True  # Train takes the URL's settings even if it has its own
    st.switch_page("views/train.py", query_params={**preset.settings, "label": preset.label})


header("🧪 MTL Lab")
st.markdown("#### Train one network on several tasks at once — and see when sharing helps and when it hurts.")

left, right = st.columns([5, 6], gap="large")
with left:
    st.markdown(SECTIONS["mtl"].body)
    st.markdown(
        "The two classic ways to share are drawn on the right. **Hard sharing** (top) gives all tasks one "
        "trunk; **soft sharing** (bottom) gives each task its own network and pulls them together with a "
        "penalty. The Learn page explains these and more."
    )
    st.caption(SECTIONS["mtl"].cite + "  \n" + SECTIONS["sharing"].cite.split("\n")[0])
with right:
    config = {"staticPlot": True, "displayModeBar": False}
    st.plotly_chart(architecture_figure("hard", DIAGRAM_TASKS, title="Hard sharing: one shared trunk"),
                    config=config, key="home_hard")
    st.plotly_chart(architecture_figure("soft", DIAGRAM_TASKS, title="Soft sharing: a network per task, tied by λ"),
                    config=config, key="home_soft")

st.divider()
st.subheader("Start here")
st.markdown(
    "1. **Pick an experiment below** — it opens *Train* with everything set.\n"
    "2. **Press Start** and watch every task's curves live (a run takes well under a minute).\n"
    "3. **Move a loss-weight slider** or switch the architecture, and train again.\n"
    "4. On **Compare**, put runs side by side and against single-task baselines: did sharing help?\n"
    "5. On **Predict**, draw or upload a picture and see every task's answer at once.\n"
    "6. **Learn** explains each idea with its paper."
)

st.subheader("Experiments")
columns = st.columns(2, gap="medium")
for index, preset in enumerate(PRESETS):
    with columns[index % 2].container(border=True):
        st.markdown(f"**{preset.title}**")
        st.markdown(preset.blurb)
        if st.button("Open in Train →", key=f"home_preset_{index}",
                     help="Opens the Train page with these settings; nothing trains until you press Start.",
                     type="primary" if index == 0 else "secondary"):
            open_preset(index)
