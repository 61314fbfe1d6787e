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
