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
