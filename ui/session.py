"""What every page needs from the session: the run store, the runner, who is using the app.

    from ui.session import get_store, get_runner, owner, state_badge

``get_store`` and ``get_runner`` are cached per data folder (``MTL_HOME``), so
all sessions of one app process share one store and one runner, and a test
that points ``MTL_HOME`` somewhere else gets fresh ones.
"""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from mtlcore.runs import Runner, RunStore, default_home

# How often (seconds) a page load may check that a worker process is alive.
# Checking writes to the store, so not on every slider move.
ENSURE_WORKERS_EVERY = 10.0
ANONYMOUS = "anonymous"

_BADGES = {
    "queued": "⏳ queued",
    "running": "🟢 running",
    "finished": "✅ finished",
    "cancelled": "⏹️ cancelled",
    "diverged": "💥 diverged",
    "failed": "❌ failed",
    "interrupted": "⚠️ interrupted",
}


def home_path() -> str:
    """The data folder as an absolute path (the cache key of the store and runner)."""
    return str(Path(default_home()).expanduser().absolute())


@st.cache_resource(show_spinner=False)
def _store_for(home: str) -> RunStore:
    return RunStore(home)


@st.cache_resource(show_spinner=False)
def _runner_for(home: str) -> Runner:
    runner = Runner(_store_for(home))
    runner.ensure_workers()
    runner._last_ensure = time.monotonic()  # noqa: SLF001  (our own bookkeeping on a cached object)
    return runner


def get_store() -> RunStore:
    """The run store of the data folder (one per app process). Raises StoreError if unusable."""
    return _store_for(home_path())


def get_runner() -> Runner:
    """The runner of the data folder, with a worker process alive (started if needed)."""
    runner = _runner_for(home_path())
    now = time.monotonic()
    if now - getattr(runner, "_last_ensure", 0.0) >= ENSURE_WORKERS_EVERY:
        runner._last_ensure = now
        runner.ensure_workers()  # a worker that crashed is replaced on the next page load
    return runner


def owner() -> str:
    """The name typed in the sidebar ("anonymous" when blank): whose runs these are."""
    name = str(st.session_state.get("owner", "") or "").strip()
    return name or ANONYMOUS


def state_badge(state: str) -> str:
    """An emoji and the state's name, e.g. "🟢 running"."""
    return _BADGES.get(state, f"• {state}")


def run_name(record) -> str:
    """How a run is named in lists: its label (or "unnamed") and its id."""
    return f"{record.label or 'unnamed'} · {record.id}"


def ago(timestamp: float | None) -> str:
    """"12 s ago", "5 min ago", "3 h ago", "2 d ago"; "" for None."""
    if not timestamp:
        return ""
    seconds = max(0.0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def page_exists(path: str) -> bool:
    """True if the page file (relative to the app's folder) is there, e.g. "pages/predict.py"."""
    return (Path(__file__).resolve().parents[1] / path).is_file()


def ensure_app_entry() -> None:
    """Run this page inside ``app.py`` even when Streamlit started it on its own.

    Until ``app.py`` has called ``st.navigation`` once in a server process,
    Streamlit treats the ``pages/`` folder as an old-style multipage app: a
    link straight to ``/train`` (say, shared by a teacher just after the
    server started) runs the page alone, without the page settings and the
    shared sidebar (AppTest does the same on every run after a page switch).
    Then this switches that mode off and runs ``app.py`` here, which shows
    the sidebar and runs this page once more, and stops the lone run. Pages
    call this first thing, before they draw anything.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without that internal: nothing to fix
        return
    if not getattr(PagesManager, "uses_pages_directory", False):
        return
    PagesManager.uses_pages_directory = False
    entry = Path(__file__).resolve().parents[1] / "app.py"
    exec(compile(entry.read_text(encoding="utf-8"), str(entry), "exec"),  # noqa: S102
         {"__name__": "__main__", "__file__": str(entry)})
    st.stop()
