"""The sidebar says how big the data folder is, and warns when the store has lost runs."""
from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore.runs import Runner, RunStore

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_the_sidebar_warns_of_run_folders_the_store_does_not_know(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    RunStore(tmp_path)  # an empty store next to a run folder it never heard of (e.g. a 0-byte store file)
    (tmp_path / "runs" / "lost01").mkdir(parents=True)
    (tmp_path / "runs" / "lost01" / "config.json").write_text("{}")
    try:
        at = AppTest.from_file(APP, default_timeout=90)
        at.run()
        assert not at.exception, at.exception
        warnings = " ".join(w.value for w in at.sidebar.warning)
        assert "not in the store" in warnings and "repair" in warnings
        assert any("Data folder size" in c.value for c in at.sidebar.caption)
    finally:
        Runner(RunStore(tmp_path), max_workers=1).stop_workers(timeout=10)
        st.cache_resource.clear()
        st.cache_data.clear()
