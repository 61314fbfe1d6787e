"""Draws the Train page's settings table (``ui/train_settings.py``) as tabs of Streamlit controls.

    from ui.train_form import settings_tabs
    settings_tabs(config, view)

Every control's value is written into session state by the page before it is
drawn (see ``views/train.py``), so a control only shows the configuration; a
row's ``widget`` says which Streamlit control draws it. A lesson link's
hidden rows are not drawn (they keep the link's value), locked rows are drawn
disabled, and ``explain=0`` leaves out the notes under the controls, the
architecture diagram's caption and the loss formula.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import streamlit as st

from mtlcore import WEIGHTINGS, ExperimentConfig, dataset_info
from mtlcore import charts
from mtlcore.weighting import AggregatedGradient
from ui.texts import formula_note, loss_formula
from ui.train_settings import FLOW, TABS, Setting, matches, rows_for

ss = st.session_state
MORE = {"data": "Dataset options", "training": "More training settings"}
# Widths in a flowing group (FLOW): tick boxes as wide as their label, weight sliders two to a 420 px column.
FLOW_WIDTH = {"checkbox": "content", "slider": 190}


@dataclass(frozen=True)
class View:
    """What a lesson link lets students see: hidden and locked keys (or prefixes), and the explanations."""

    hidden: tuple[str, ...] = ()
    locked: tuple[str, ...] = ()
    explain: bool = True
    frozen: frozenset = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "frozen", frozenset(self.hidden) | frozenset(self.locked))

    def shows(self, row: Setting, config: ExperimentConfig) -> bool:
        return row.shown(config) and not matches(row.key, self.hidden)


def control(where, row: Setting, disabled: bool, width: int | str | None = None) -> None:
    """One row's Streamlit control; its range stretches to hold the value shown (a link may carry any)."""
    key, value = row.widget_key, ss.get(row.widget_key)
    common = dict(key=key, help=row.help, disabled=disabled, **({"width": width} if width else {}))
    if row.widget == "checkbox":
        where.checkbox(row.label, **common)
    elif row.widget == "toggle":
        where.toggle(row.label, **common)
    elif row.widget == "select":
        where.selectbox(row.label, row.offered(), format_func=row.fmt or str, **common)
    elif row.widget == "steps":
        options = sorted(set(row.offered()) | ({value} if value is not None else set()))
        where.select_slider(row.label, options, format_func=row.fmt or str, **common)
    elif row.widget == "slider":
        kind = row.kind
        value = kind(row.lo) if value is None else value
        where.slider(row.label, kind(min(row.lo, value)), kind(max(row.hi, value)), step=kind(row.step), **common)
    elif row.widget == "number":
        low = None if row.lo is None else min(row.kind(row.lo), value if value is not None else row.lo)
        where.number_input(row.label, min_value=low, step=row.kind(row.step), **common)
    else:
        raise ValueError(f"Unknown widget kind {row.widget!r} for {row.key}.")


def rows_block(rows: list[Setting], config: ExperimentConfig, view: View) -> None:
    """Rows in order; a group's heading above it; two columns where a row asks for the right one."""
    for group, members in groupby(rows, key=lambda r: r.group):
        members = list(members)
        if group:
            st.markdown(group)
        if all(r.column == FLOW for r in members):  # tick boxes and sliders side by side, wrapping when narrow
            flow = st.container(horizontal=True, wrap=True, gap="medium")
            for row in members:
                control(flow, row, disabled=matches(row.key, view.locked), width=FLOW_WIDTH.get(row.widget))
            continue
        two = any(r.column for r in members)
        columns = st.columns(2) if two else [st.container()]
        for row in members:
            where = columns[row.column] if two else columns[0]
            control(where, row, disabled=matches(row.key, view.locked))
            if row.note and view.explain:
                where.caption(row.note(config))


def tab_body(tab: str, rows: list[Setting], config: ExperimentConfig, view: View) -> None:
    main = [r for r in rows if not r.more]
    more = [r for r in rows if r.more]
    rows_block(main, config, view)
    if tab == "model":
        model_extras(config, view)
    if more:
        # Open when the options matter to the experiment (synthetic's correlation) or a link changed them.
        open_ = tab == "data" and (bool(config.dataset.options) or "correlation" in dataset_info(config.dataset.name).options)
        with st.expander(MORE.get(tab, "More settings"), expanded=open_):
            rows_block(more, config, view)


def model_extras(config: ExperimentConfig, view: View) -> None:
    """The architecture's diagram with the ticked tasks, and (explain) the loss formula."""
    st.plotly_chart(charts.architecture_figure(config.model.arch, list(config.tasks) or ["task"],
                                               num_experts=config.model.num_experts),
                    config={"staticPlot": True, "displayModeBar": False}, key="train_arch_diagram")
    if not view.explain:
        return
    with st.expander("Loss formula"):
        kinds = {t.name: t.kind for t in dataset_info(config.dataset.name).tasks}
        st.latex(loss_formula(config.tasks, config.loss.weights, kinds, config.weighting.method,
                              config.model.arch, config.reg))
        method = config.weighting.method
        gradients = method in WEIGHTINGS and issubclass(WEIGHTINGS.get(method), AggregatedGradient)
        st.caption(formula_note(method, gradients) + " CE: cross-entropy; MSE: mean squared error.")


def settings_tabs(config: ExperimentConfig, view: View) -> None:
    """The settings in tabs (data and tasks first); a tab whose every row is hidden is left out."""
    shown = [r for r in rows_for(config) if view.shows(r, config)]
    by_tab = {tab: [r for r in shown if r.tab == tab] for tab in TABS}
    tabs = [tab for tab, rows in by_tab.items() if rows]
    if not tabs:
        return  # a lesson that hides every control: the run and its results remain
    for tab, where in zip(tabs, st.tabs([TABS[t] for t in tabs])):
        with where:
            tab_body(tab, by_tab[tab], config, view)
