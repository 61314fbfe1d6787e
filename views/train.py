"""Train: choose tasks, weights, architecture and regularisers; start a background run; watch it live.

The page never trains: Start hands the configuration to the runner, a worker
process trains it, and a fragment polls the store once a second while the
run is queued or running (and stops polling when it has ended).

The whole configuration lives in the URL (``ui/train_url.py``), so a teacher
can share a link that opens the same setup. The controls are the rows of one
table (``ui/train_settings.py``), drawn in tabs by ``ui/train_form.py``; the
run bar is ``ui/train_run.py`` and the live panel ``ui/train_live.py``.
"""
from __future__ import annotations

import streamlit as st

from mtlcore import ConfigError, ExperimentConfig, dataset_info, validate
from mtlcore.runs import StoreError
from ui import page
from ui.safe_text import say
from ui.session import get_store
from ui.lesson_box import lesson_box
from ui.lesson_share import lesson_share_panel
from ui.train_form import View, settings_tabs
from ui.train_live import live_panel, recent_runs
from ui.train_run import run_bar, run_footer
from ui.train_settings import K, absorb, parse_list, widget_values
from ui.train_url import PUSHED, chosen_here, sync_from_url, write_url

POLL_SECONDS = 1.0
ss = st.session_state


# Why the controls are written on every run: the configuration (``train_config``, a key no widget owns,
# so Streamlit never drops it) is the one truth, and the controls only show it. A widget key that
# Streamlit dropped (its widget was not drawn on some run: another dataset, another page, a run cut
# short by a quick click) or that the browser mounted at the widget's default once showed every task
# unticked, weights 0.00 and n_samples=0 while the URL kept the defaults. Values written through
# session state before a widget is drawn are sent with the widget, so the browser always shows them.


def show_config(config: ExperimentConfig) -> None:
    """Write ``config``'s value into every control's session state (before any control is drawn)."""
    values = widget_values(config)
    for key, value in values.items():
        ss[key] = value
    ss[PUSHED] = values


def absorb_changes(config: ExperimentConfig, view: View) -> ExperimentConfig:
    """``config`` with what the person changed in the controls since the last run (a dropped key changes nothing)."""
    pushed = ss.get(PUSHED)
    if not pushed:
        return config
    changed = {key: ss[key] for key, value in pushed.items() if key in ss and ss[key] != value}
    return absorb(config, changed, frozen=view.frozen) if changed else config


def lesson_view() -> View:
    """The hidden and locked controls and the explanations, as the page's link set them."""
    flags = ss.get(f"{K}flags", {})
    return View(parse_list(flags.get("hide")), parse_list(flags.get("lock")), flags.get("explain") != "0")


def reopen(run_id: str) -> None:
    """Button callback: show an earlier run and load its settings into the controls."""
    try:
        record = get_store().get_run(run_id)
    except StoreError as error:
        ss[f"{K}notice"] = ("error", str(error))
        return
    ss[f"{K}run"] = record.id
    ss[f"{K}config"] = record.config
    ss[f"{K}label"] = record.label
    ss.pop(PUSHED, None)
    chosen_here()


def reset_settings() -> None:
    """Button callback: every control back to the lesson's settings (or the defaults); the run is left as it is."""
    ss[f"{K}config"] = ss.get(f"{K}lesson_config") or ExperimentConfig()
    ss[f"{K}label"] = ""
    ss.pop(PUSHED, None)
    chosen_here()


def problem_of(config: ExperimentConfig) -> str | None:
    """Why ``config`` cannot be trained, in one sentence; None when it can."""
    missing = dataset_info(config.dataset.name).unavailable_reason()
    if missing:  # the worker would fail with a traceback in its log; say here what to do instead
        return missing
    text = config.to_json()
    if ss.get(f"{K}checked", (None,))[0] != text:  # validated once per configuration, not on every poll
        try:
            validate(config)
            ss[f"{K}checked"] = (text, None)
        except (ConfigError, ValueError) as error:
            ss[f"{K}checked"] = (text, str(error))
    return ss[f"{K}checked"][1]


def live_column(view: View) -> None:
    run_id = ss.get(f"{K}run")
    if run_id:
        try:
            active = get_store().get_run(run_id).is_active
        except StoreError:
            active = False
        panel = st.fragment(live_panel, run_every=POLL_SECONDS if active else None)
        with st.container(border=True):
            panel(run_id, active)
    else:
        st.info("Choose tasks and settings, then press **Start**. The run trains in the background; "
                "its curves appear here as it learns.")
    run_footer(view.explain)
    recent_runs(reopen)


# ----- the page ---------------------------------------------------------------------------------

config = absorb_changes(ss.get(f"{K}config") or ExperimentConfig(), lesson_view())
ss[f"{K}config"] = config
link_problems = sync_from_url()
view = lesson_view()
page.header("🏋️ Train", "Tick tasks, set their weights, press Start and watch every task learn; the address "
            "holds the settings: share it to share the setup.", view.explain)
for problem in link_problems:
    say("warning", f"Part of the link was not used: {problem}")
lesson_box()  # a guided lesson's step, question and Next (nothing outside a lesson)

config = ss[f"{K}config"]
show_config(config)
# The run (Start, the live charts) on the left, the settings on the right: on a phone the columns stack, and
# Start and the run come first.
run_column, settings = st.columns([11, 9], gap="medium")
with settings:
    settings_tabs(config, view)
    st.button("Reset all settings", key=f"{K}reset", on_click=reset_settings,
              help="Every control back to the lesson's settings, or to its default (your runs are kept).")
    lesson_share_panel(config)
with run_column:
    run_bar(config, problem_of(config))
    live_column(view)
write_url(config)
