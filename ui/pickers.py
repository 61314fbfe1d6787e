"""A select box whose option labels change while it is on the page (states, counts, "2 min ago").

Streamlit keeps a select box's choice as the label it showed: when a label
changes between reruns under the same key (a study going from "running · 3
of 12" to "finished"), the box can go on showing the old one. The Studies
picker once said "running" after its study had finished. Here the box's key
changes with its labels, so a new box is drawn with the new ones, and the
choice itself (an id) is kept under ``chosen_key`` in the session.
"""
from __future__ import annotations

import zlib
from typing import Any, Mapping

import streamlit as st


def live_selectbox(label: str, labels: Mapping[str, str], chosen_key: str, where: Any = None, **kwargs) -> str:
    """Choose one of ``labels`` (id -> label); the chosen id, also kept in ``st.session_state[chosen_key]``.

    The first id is chosen when the kept one is gone. ``where``: a column or container (default: the page).
    """
    ids = list(labels)
    if st.session_state.get(chosen_key) not in labels:
        st.session_state[chosen_key] = ids[0]
    version = zlib.crc32("\n".join(labels.values()).encode())
    chosen = (where or st).selectbox(label, ids, index=ids.index(st.session_state[chosen_key]),
                                     key=f"{chosen_key}__{version}", format_func=labels.get, **kwargs)
    st.session_state[chosen_key] = chosen
    return chosen
