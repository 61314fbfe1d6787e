"""MTL Lab: the Streamlit entry point (``streamlit run app.py``).

Page configuration, navigation and the sidebar every page shares: who you
are, where the runs are stored, and how busy the training queue is. The
pages live in ``views/`` (not ``pages/``: Streamlit would run a folder of
that name as an old-style multipage app, skipping this file); all training happens in background workers.
"""
from __future__ import annotations


import streamlit as st

from mtlcore.runs import StoreError
from ui.session import get_runner, get_store, home_path
from ui.texts import HELP

st.set_page_config(page_title="MTL Lab", page_icon="🧪", layout="wide", initial_sidebar_state="expanded")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/train.py", title="Train", icon="🏋️"),
    st.Page("views/compare.py", title="Compare", icon="⚖️"),
    st.Page("views/studies.py", title="Studies", icon="🔬"),
    st.Page("views/predict.py", title="Predict", icon="🔮"),
    st.Page("views/data.py", title="Data", icon="🗂️"),
    st.Page("views/learn.py", title="Learn", icon="📖"),
]
page = st.navigation(PAGES)

# ----- the shared sidebar ------------------------------------------------------------
st.session_state.setdefault("owner", "anonymous")
with st.sidebar:
    st.text_input("Your name", key="owner", max_chars=40, help=HELP["owner"])
    st.caption(f"Data folder: `{home_path()}`")

try:
    get_runner()  # keeps a background worker alive (checked every few seconds, not on every rerun)
    store = get_store()
except (StoreError, OSError) as error:
    st.error(str(error))
    st.stop()


@st.fragment(run_every=3)
def queue_status() -> None:
    """How many runs are waiting or training, refreshed every few seconds."""
    try:
        get_runner()  # at most every few seconds: a worker that died is replaced, its run marked interrupted
        active = store.list_runs(states=("queued", "running"))
    except Exception:  # a busy database now and then is no reason to break the sidebar
        return
    running = sum(r.state == "running" for r in active)
    queued = len(active) - running
    if not active:
        st.caption("Queue: idle — no run is training.")
    else:
        st.caption(f"Queue: 🟢 {running} running · ⏳ {queued} waiting")


with st.sidebar:
    queue_status()
page.run()
