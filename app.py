"""MTL Lab: the Streamlit entry point (``streamlit run app.py``).

Page configuration, navigation and the sidebar every page shares: who you
are, where the runs are stored, and how busy the training queue is. The
pages live in ``pages/``; all training happens in background workers.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from mtlcore.runs import StoreError
from ui.session import get_runner, get_store, home_path
from ui.texts import HELP

st.set_page_config(page_title="MTL Lab", page_icon="🧪", layout="wide", initial_sidebar_state="expanded")

HERE = Path(__file__).resolve().parent


def _page(path: str, title: str, icon: str, default: bool = False) -> st.Page:
    """A page from ``path``; a placeholder with the same address while the file is being written."""
    if (HERE / path).is_file():
        return st.Page(path, title=title, icon=icon, default=default)

    def coming_soon() -> None:
        st.title(title)
        st.info(f"The {title} page is not installed yet ({path} is missing).")

    return st.Page(coming_soon, title=title, icon=icon, url_path=Path(path).stem, default=default)


PAGES = [
    _page("pages/home.py", "Home", "🏠", default=True),
    _page("pages/train.py", "Train", "🏋️"),
    _page("pages/compare.py", "Compare", "⚖️"),
    *([_page("pages/studies.py", "Studies", "🔬")] if (HERE / "pages/studies.py").is_file() else []),
    _page("pages/predict.py", "Predict", "🔮"),
    *([_page("pages/data.py", "Data", "🗂️")] if (HERE / "pages/data.py").is_file() else []),
    _page("pages/learn.py", "Learn", "📖"),
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
