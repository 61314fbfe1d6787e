"""The "Share as a lesson" panel (issue #19 §1): the teacher picks what students see, and gets a link.

    from ui.lesson_share import lesson_share_panel
    lesson_share_panel(config)        # on Train (and Studies), under the settings

The teacher chooses which controls students do not see (``hide``), which
they see but cannot move (``lock``, at the teacher's value), whether the
explanations show, a title and an optional goal (what the class board
sorts by, e.g. "highest shape accuracy with size MAE under 0.5"). "Make the
link" records the lesson in the store (so the board knows its title and
goal) and shows the address: the page's settings, the lesson keys and the
lesson's id. The Train page honours hide/lock/explain (ui/train_settings.py).
"""
from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from mtlcore import ExperimentConfig, dataset_info
from mtlcore.lessons import (BOARD_PATH, GOAL_FORMS, TRAIN_PATH, GoalError, LessonRoom, link_url, parse_goal,
                             share_params)
from mtlcore.runs import StoreError
from ui.safe_text import say
from ui.session import get_store, owner

K = "share_"
ss = st.session_state
PAGE_PATHS = ("train", "studies", "learn", "class_board", "compare")
# Sections a teacher can hide or lock at once (every control whose key starts with the name).
SECTIONS = {"dataset": "Dataset and its options", "tasks": "Tasks", "loss.weights": "Loss weights",
            "model.arch": "Architecture", "weighting.method": "Weighting method", "optim": "Optimiser settings",
            "train": "Training settings", "reg": "Regularisation", "seed": "Seed"}


def control_rows(config: ExperimentConfig) -> dict[str, str]:
    """The controls a link can hide or lock: key -> label.

    From the Train page's settings table (ui/train_settings.py) when it
    exists; otherwise the sections above and the settings this config changes.
    """
    try:
        from ui.train_settings import SETTINGS  # H4's table of every control
    except ImportError:
        SETTINGS = None
    rows = dict(SECTIONS)
    if SETTINGS:
        for row in SETTINGS:
            key = getattr(row, "key", None)
            if key:
                rows.setdefault(key, f"{getattr(row, 'label', key)} ({key})")
    for task in dataset_info(config.dataset.name).tasks:
        rows.setdefault(f"tasks.{task.name}", f"Task {task.name} (its tick box)")
        rows.setdefault(f"loss.weights.{task.name}", f"Weight of {task.name}")
    for key in config.to_flat():
        rows.setdefault(key, key)
    return rows


def base_url() -> str:
    """The app's root address as this browser reached it (a link that works in the room), without the page."""
    try:
        url = st.context.url or ""
    except AttributeError:
        url = ""
    if not url:
        url = f"http://{(st.context.headers or {}).get('Host', 'localhost:8501')}/"
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in PAGE_PATHS:  # the page this panel is on: the link names its own page
        path = head
    return f"{parts.scheme}://{parts.netloc}{path}"


def make_link(config: ExperimentConfig) -> None:
    """Button callback: check the goal, record the lesson, keep the link to show."""
    goal = (ss.get(f"{K}goal") or "").strip()
    if goal:
        tasks = {t.name: (t.metric, t.higher_is_better) for t in dataset_info(config.dataset.name).tasks
                 if t.name in config.tasks}
        try:
            parse_goal(goal, tasks)
        except GoalError as error:
            ss[f"{K}problem"] = str(error)
            return
    params = share_params(config, ss.get(f"{K}hide", []), ss.get(f"{K}lock", []),
                          explain=not ss.get(f"{K}no_explain", False))
    try:
        shared = LessonRoom(get_store()).share(ss.get(f"{K}title") or "Lesson", goal, params, by=owner())
    except StoreError as error:
        ss[f"{K}problem"] = str(error)
        return
    ss[f"{K}made"] = shared


def lesson_share_panel(config: ExperimentConfig) -> None:
    """The expander with the choices and, once made, the link and the class board's address."""
    with st.expander("🔗 Share as a lesson"):
        st.caption("Students who open the link see the Train page with these settings. Hidden controls keep your "
                   "value; locked ones show it but cannot be moved; results are never hidden. Their runs carry "
                   "the lesson's id, so the Class board shows everyone's.")
        rows = control_rows(config)
        st.multiselect("Hide from students", list(rows), format_func=rows.get, key=f"{K}hide")
        st.multiselect("Lock at my value", [k for k in rows if k not in ss.get(f"{K}hide", [])],
                       format_func=rows.get, key=f"{K}lock")
        st.checkbox("Hide the explanations", key=f"{K}no_explain",
                    help="Students see the controls without the notes under them and the loss formula (explain=0).")
        st.text_input("Lesson title", key=f"{K}title", max_chars=60, placeholder="e.g. The weights race")
        st.text_input("Goal (optional: what the class board sorts by)", key=f"{K}goal", max_chars=120,
                      placeholder="highest shape accuracy with size MAE under 0.5",
                      help="One of: " + "; ".join(GOAL_FORMS) + ".")
        st.button("Make the link", key=f"{K}make", on_click=make_link, args=(config,))
        problem = ss.pop(f"{K}problem", None)
        if problem:
            say("error", problem)
        made = ss.get(f"{K}made")
        if made is not None:
            root = base_url()
            st.markdown("**The lesson link** (copy it for your students):")
            st.code(link_url(root, TRAIN_PATH, made.link), language=None)
            st.caption("The class board of this lesson:")
            st.code(link_url(root, BOARD_PATH, {"lesson": made.id}), language=None)
