"""The "This machine" panel: the same report as ``python -m mtlcore doctor``."""
from __future__ import annotations

import streamlit as st

from mtlcore.doctor import environment_report

_MARK = {True: "✅", False: "❌", None: ""}


@st.cache_data(ttl=60, show_spinner="Looking at this machine…")
def _report_dict() -> dict:
    return environment_report(check_training=False).as_dict()


def machine_report_expander() -> None:
    """An expander with every section of the environment report as a small table."""
    report = _report_dict()
    with st.expander("This machine: versions, devices, methods, datasets (`python -m mtlcore doctor`)"):
        if not report["core_ok"]:
            st.error("MTL Lab cannot train on this machine: see the rows marked ❌.")
        for name, lines in report["sections"].items():
            st.markdown(f"**{name}**")
            st.dataframe([{"": _MARK[line["ok"]], "what": line["label"], "here": line["value"]} for line in lines],
                         hide_index=True)


@st.cache_data(ttl=60, show_spinner=False)
def _store_health(home: str) -> tuple[list[str], str]:
    from mtlcore.runs import RunStore, data_folder_size, quick_check

    return [finding.sentence for finding in quick_check(RunStore(home))], data_folder_size(home).as_text()


def store_health_sidebar(home: str) -> None:
    """The data folder's size, and a warning when its run folders and its store disagree (checked every minute)."""
    try:
        findings, size = _store_health(home)
    except Exception as error:  # noqa: BLE001  (a check that fails must not take the sidebar down)
        st.warning(f"Could not check the data folder: {error}")
        return
    st.caption(f"Data folder size: {size}")
    for sentence in findings:
        st.warning(sentence)
