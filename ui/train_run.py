"""The Train page's run bar: the run's label, Start, Stop and Delete, and what they answer.

    from ui.train_run import run_bar, run_footer
    run_bar(config, problem)   # above the live panel
    run_footer()               # below it

Start hands the configuration to the runner (a worker trains it); Stop and
Delete act on the page's run (``train_run``) for its owner or the teacher.
Button callbacks leave one notice (``train_notice``) that the bar shows on
the next run: an error in words, a success as a toast.
"""
from __future__ import annotations

import streamlit as st

from mtlcore import ConfigError, ExperimentConfig
from mtlcore.runs import NotOwnerError, QueueFullError, StoreError
from ui.lesson_box import current_lesson
from ui.safe_text import say, toast
from ui.session import get_runner, get_store, owner
from ui.train_url import chosen_here
from ui.texts import HELP

K = "train_"
ss = st.session_state


def auto_label(config: ExperimentConfig) -> str:
    """A readable default label, e.g. "hard · shape+color · color×2"."""
    parts = [config.model.arch, "+".join(config.tasks) or "no task"]
    if config.weighting.method != "static":
        parts.append(config.weighting.method)
    weights = [f"{t}×{w:g}" for t, w in config.loss.weights.items() if t in config.tasks]
    if weights:
        parts.append(" ".join(weights))
    return " · ".join(parts)


def start(config: ExperimentConfig, label: str) -> None:
    try:
        run_id = get_runner().submit(config, label=label, owner=owner(), lesson=current_lesson())
    except (QueueFullError, ConfigError, StoreError, ValueError) as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss[f"{K}run"] = run_id
    chosen_here()  # the rerun that follows may carry the address of before the click (ui/train_url.py)
    ss[f"{K}notice"] = ("success", f"Queued “{label}”; a background worker trains it and the charts below update live.")


def stop(run_id: str) -> None:
    try:
        message = get_runner().cancel(run_id, by=owner())
    except (NotOwnerError, StoreError) as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss[f"{K}notice"] = ("info", message)


def delete(run_id: str) -> None:
    """Button callback: delete an ended run (its owner or the teacher); the page then shows no run."""
    try:
        message = get_runner().delete(run_id, by=owner())
    except (NotOwnerError, StoreError) as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss.pop(f"{K}run", None)
    chosen_here()
    ss[f"{K}notice"] = ("info", message)


def page_run():
    """The page's run record, or None (a run that was deleted meanwhile is forgotten)."""
    current = ss.get(f"{K}run")
    if not current:
        return None
    try:
        return get_store().get_run(current)
    except StoreError:
        ss.pop(f"{K}run", None)
        return None


def run_bar(config: ExperimentConfig, problem: str | None) -> None:
    """The label, then Start and Stop side by side, then what stops Start and the last notice."""
    record = page_run()
    me = owner()
    allowed = record is not None and me.may_change(record.owner, record.owner_key)
    can_stop = record is not None and record.is_active and allowed
    st.text_input("Run label", key=f"{K}label", placeholder=auto_label(config), help=HELP["label"], max_chars=80)
    b1, b2 = st.columns(2)
    start_clicked = b1.button("▶ Start", type="primary", key=f"{K}start", disabled=problem is not None,
                              help=HELP["start"], width="stretch")
    stop_clicked = b2.button("■ Stop", key=f"{K}stop", disabled=not can_stop, help=HELP["stop"], width="stretch")
    if problem:
        say("error", problem)
    if start_clicked and problem is None:
        start(config, (ss.get(f"{K}label") or "").strip() or auto_label(config))
        st.rerun()  # redraw with the new run: its panel, the Stop button, the URL
    if stop_clicked and can_stop:
        stop(record.id)
        st.rerun()
    notice = ss.pop(f"{K}notice", None)
    if notice and notice[0] == "error":
        say("error", notice[1])
    elif notice:
        toast(notice[1], icon="✅" if notice[0] == "success" else "ℹ️")


def run_footer(explain: bool = True) -> None:
    """Under the live panel: who may stop or delete the run (and Delete for them), and the name tip.

    Below the panel rather than under Stop: on a projector the live chart then fits the first screen.
    """
    record, me = page_run(), owner()
    allowed = record is not None and me.may_change(record.owner, record.owner_key)
    if record is not None and not allowed:
        say("caption", me.refusal("this run", record.owner, record.owner_key, "stop" if record.is_active else "delete"))
    if record is not None and allowed and not record.is_active:
        with st.popover("🗑 Delete this run"):
            st.caption("Its metrics and checkpoint are deleted for good; Compare and Predict no longer list it.")
            st.button(f"Delete {record.id}", key=f"{K}delete", type="primary", on_click=delete, args=(record.id,))
    if me.name == "anonymous" and explain:
        st.caption("Tip: type your name in the sidebar, so that others can tell your runs apart.")
