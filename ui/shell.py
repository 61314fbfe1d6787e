"""The app's shell: page configuration, navigation and the sidebar every page shares.

Who you are, where the runs are stored, and how busy the training queue is.
``app.py`` calls ``main`` when Streamlit runs it; the pages live in ``views/``.
"""
from __future__ import annotations

# Imported before anything else, and whole: Plotly looks pandas up in sys.modules without importing it, so a
# chart built in one session's thread while another session's thread was still importing pandas (Streamlit
# imports it lazily, for its first table) failed with "partially initialized module 'pandas'". An import
# statement waits for an import in progress; sys.modules.get does not.
import pandas  # noqa: F401
import streamlit as st

from mtlcore.owners import TEACHER_ATTEMPTS, TEACHER_PASSWORD_VARIABLE, teacher_password_set
from mtlcore.runs import StoreError
from ui.machine_report import store_health_sidebar
from ui.safe_text import md
from ui.session import (browser_key, get_runner, get_store, home_path, is_teacher, keep_name, owner_name, remember_key,
                        remember_name, use_key)
from ui.texts import HELP


# ----- the shared sidebar ------------------------------------------------------------
def adopt_typed_key() -> None:
    """Callback: use the key typed in from another device (one sentence if it is not a key)."""
    typed = st.session_state.pop("owner_key_typed", "")
    if typed and not use_key(typed):
        st.session_state["owner_key_problem"] = "That is not a key this app made; your key is unchanged."


def unlock_teacher() -> None:
    """Callback: teacher mode when the typed password is the server's MTL_TEACHER_PASSWORD."""
    typed = st.session_state.pop("teacher_password", "")
    if not typed:
        # Popping the field's value makes Streamlit fire this callback again with an empty field on a later
        # click (seen in the browser: the teacher's Stop on the class board was refused). Nothing was typed,
        # so teacher mode stays as it is; only "Leave teacher mode" turns it off.
        return
    # Guesses are slowed per source: the address the request came from, else this browser's key.
    source = st.context.ip_address or browser_key()
    unlocked, problem = TEACHER_ATTEMPTS.check(source, typed)
    if unlocked:
        st.session_state["teacher"] = True
    if problem:
        st.session_state["teacher_problem"] = problem


def key_box() -> None:
    """The private key: shown open once, when it is new, so that it can be taken to another device."""
    key = browser_key()
    problem = st.session_state.pop("owner_key_problem", None)
    if problem:
        st.warning(problem)
    new = st.session_state.get("owner_key_new", False)
    with st.expander("🔑 Your private key" + (" (new: keep it)" if new else ""), expanded=new):
        st.caption("Your runs and datasets belong to this key, not to the name above: only this browser (or the "
                   "teacher) can stop or delete them. To use them from another device, paste the key there, or "
                   "open the app there with ?key=… at the end of the address.")
        st.code(key, language=None)
        st.text_input("Use my key from another device", key="owner_key_typed", type="password",
                      on_change=adopt_typed_key)
    st.session_state["owner_key_new"] = False  # shown open once
    remember_key()


def teacher_box() -> None:
    with st.expander("🎓 Teacher" + (": on" if is_teacher() else "")):
        if not teacher_password_set():
            st.caption(f"Set {TEACHER_PASSWORD_VARIABLE} on the server to let the teacher stop or delete any run.")
        elif is_teacher():
            st.caption("Teacher mode: you may stop and delete anyone's runs and datasets.")
            if st.button("Leave teacher mode", key="teacher_leave"):
                st.session_state["teacher"] = False
                st.rerun()
        else:
            st.text_input("Teacher password", key="teacher_password", type="password", on_change=unlock_teacher)
        problem = st.session_state.pop("teacher_problem", None)
        if problem:
            st.error(problem)


def sidebar() -> None:
    st.text_input("Your name", key="owner", max_chars=40, help=HELP["owner"])
    remember_name()
    if owner_name() != st.session_state["owner"].strip() and st.session_state["owner"].strip():
        st.caption(f"Shown as: {md(owner_name())}")
    key_box()
    teacher_box()
    st.caption(f"Data folder: `{home_path()}`")


@st.fragment(run_every=3)
def queue_status(store) -> None:
    """How many runs are waiting or training, refreshed every few seconds."""
    try:
        workers = get_runner().max_workers  # at most every few seconds: a dead worker is replaced, its run interrupted
        active = store.list_runs(states=("queued", "running"))
    except Exception:  # a busy database now and then is no reason to break the sidebar
        return
    running = sum(r.state == "running" for r in active)
    queued = len(active) - running
    serving = f"{workers} worker{'s' if workers != 1 else ''} (MTL_WORKERS), turns taken fairly"
    if not active:
        st.caption(f"Queue: idle — no run is training · {serving}.")
    else:
        st.caption(f"Queue: 🟢 {running} running · ⏳ {queued} waiting · {serving}")


def main() -> None:
    # "auto": the sidebar starts open on a laptop or a projector and closed on a phone, where it covered the page.
    st.set_page_config(page_title="MTL Lab", page_icon="🧪", layout="wide", initial_sidebar_state="auto")
    # Less empty space around the page (6rem above, 5rem at the sides): at 1400x900 the Train page's essentials fit
    # one screen, and at 1024 px (a projector, the sidebar open) its two columns get 90 px more.
    st.html("<style>[data-testid=stMainBlockContainer] { padding-top: 3rem; } @media (min-width: 640px) { "
            "[data-testid=stMainBlockContainer] { padding-left: 2.5rem; padding-right: 2.5rem; } }</style>")
    page = st.navigation([
        st.Page("views/home.py", title="Home", icon="🏠", default=True),
        st.Page("views/train.py", title="Train", icon="🏋️"),
        st.Page("views/compare.py", title="Compare", icon="⚖️"),
        st.Page("views/studies.py", title="Studies", icon="🔬"),
        st.Page("views/gradients.py", title="Gradients", icon="🧭"),
        st.Page("views/findings.py", title="Findings", icon="📜"),
        st.Page("views/predict.py", title="Predict", icon="🔮"),
        st.Page("views/data.py", title="Data", icon="🗂️"),
        st.Page("views/learn.py", title="Learn", icon="📖"),
        st.Page("views/class_board.py", title="Class board", icon="📺", url_path="class_board"),
    ])
    keep_name()  # before the name box: a preset, a page switch or a reload does not forget it
    with st.sidebar:
        sidebar()
    try:
        get_runner()  # keeps a background worker alive (checked every few seconds, not on every rerun)
        store = get_store()
    except (StoreError, OSError) as error:
        st.error(str(error))
        st.stop()
    with st.sidebar:
        queue_status(store)
        store_health_sidebar(home_path())
    page.run()
