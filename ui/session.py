"""What every page needs from the session: the run store, the runner, who is using the app.

    from ui.session import get_store, get_runner, owner, state_badge

Who is using the app (``owner()``) is the sidebar's name plus this
browser's private key (``mtlcore.owners``): the key comes from the link
(``?key=``, taken out of the address at once so that a shared link never
carries it), else from the ``mtl_lab_key`` cookie, else it is new. A new key
is shown once in the sidebar so that a student can take it to another
device, and kept in the cookie. The teacher's password, typed in the
sidebar, makes the session the teacher's.

``get_store`` and ``get_runner`` are cached per data folder (``MTL_HOME``), so
all sessions of one app process share one store and one runner, and a test
that points ``MTL_HOME`` somewhere else gets fresh ones.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote, unquote

import streamlit as st

from mtlcore.owners import Owner, display_name, new_key, valid_key
from mtlcore.runs import Runner, RunStore, default_home

# How often (seconds) a page load may check that a worker process is alive.
# Checking writes to the store, so not on every slider move.
ENSURE_WORKERS_EVERY = 10.0
ANONYMOUS = "anonymous"
KEY_COOKIE = "mtl_lab_key"
NAME_COOKIE = "mtl_lab_name"
NAME_KEPT = "owner_kept"  # the name under a key no widget owns (Streamlit drops widget state on a page switch)
KEY_PARAM = "key"
COOKIE_DAYS = 365

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


def owner_name() -> str:
    """The name typed in the sidebar as it is shown and stored ("anonymous" when blank; see display_name)."""
    return display_name(st.session_state.get("owner", ""))


def keep_name() -> None:
    """Before the sidebar's name box is drawn: the name survives page switches, presets, reloads and links.

    ``st.switch_page`` (a preset on Home) dropped the name box's state, so the
    name fell back to anonymous and the run counted against the anonymous
    cap. The name is also kept under a key no widget owns, and in a cookie
    for a reload or a new tab (the key travels the same way, see browser_key).
    """
    ss = st.session_state
    if "owner" in ss:
        ss[NAME_KEPT] = ss["owner"]
    else:
        if NAME_KEPT not in ss:
            ss[NAME_KEPT] = unquote(_cookie(NAME_COOKIE) or "")[:40] or ANONYMOUS
        ss["owner"] = ss[NAME_KEPT]


def remember_name() -> None:
    """Keep the typed name in a cookie, written on every run until the browser sends it back.

    Not only once: a run that switches page (a preset) can replace the page
    before the browser has run the little script, and the name was then lost
    on the next reload.
    """
    ss = st.session_state
    name = str(ss.get("owner", "")).strip()
    value = quote(name if name != ANONYMOUS else "", safe="")  # percent-encoded: no user text reaches the script
    if (_cookie(NAME_COOKIE) or "") == value:
        return
    cookie = f"{NAME_COOKIE}={value}; path=/; max-age={COOKIE_DAYS * 86400}; samesite=strict"
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True)


def browser_key() -> str:
    """This browser's private key: from ``?key=`` (then removed from the address), the cookie, or new."""
    ss = st.session_state
    offered = st.query_params.get(KEY_PARAM)
    if offered is not None:
        del st.query_params[KEY_PARAM]  # never left in an address that could be shared or projected
        if valid_key(offered):
            ss["owner_key"] = offered
            ss["owner_key_new"] = False
        else:
            ss["owner_key_problem"] = "The key in the link is not a key this app made; a new one is used."
    if not valid_key(ss.get("owner_key")):
        cookie = _cookie(KEY_COOKIE)
        ss["owner_key"], ss["owner_key_new"] = (cookie, False) if valid_key(cookie) else (new_key(), True)
    return ss["owner_key"]


def use_key(key: str) -> bool:
    """Adopt a key typed in from another device; False (nothing changed) when it is not a valid key."""
    key = (key or "").strip()
    if not valid_key(key):
        return False
    st.session_state["owner_key"] = key
    st.session_state["owner_key_new"] = False
    return True


def is_teacher() -> bool:
    """Whether this session unlocked teacher mode with the server's password."""
    return bool(st.session_state.get("teacher"))


def owner() -> Owner:
    """Who is using the app: the sidebar's name and this browser's key (the teacher in teacher mode)."""
    return Owner.from_key(owner_name(), browser_key(), teacher=is_teacher())


def remember_key() -> None:
    """Keep the key in a cookie (the server cannot set one itself: a tiny script of ours does).

    Written only when the cookie lacks it, so most reruns draw nothing.
    """
    key = browser_key()
    if _cookie(KEY_COOKIE) == key or st.session_state.get("owner_key_written") == key:
        return
    st.session_state["owner_key_written"] = key
    cookie = f"{KEY_COOKIE}={key}; path=/; max-age={COOKIE_DAYS * 86400}; samesite=strict"
    # Our own constant script (the key is URL-safe characters only, checked by valid_key): no user text.
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True)


def _cookie(name: str) -> str | None:
    try:
        value = st.context.cookies.get(name)
    except Exception:  # no browser behind this session (a test), or an older Streamlit
        return None
    return value if isinstance(value, str) else None


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
