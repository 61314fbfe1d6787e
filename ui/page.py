"""The skeleton every page shares: its title, one help line, a notice left by a callback, the name tip.

    from ui import page
    page.header("🏋️ Train", "Choose tasks ... press Start.")
    page.notice("studies_notice")
    page.name_tip("studies")

The sidebar (name, key, teacher, queue) is drawn by ui/shell.py (which app.py runs) around every page;
these are the bits each page used to repeat at its top.
"""
from __future__ import annotations

import streamlit as st

from ui.safe_text import say
from ui.session import ANONYMOUS, owner


def header(title: str, help: str = "", explain: bool = True) -> None:
    """The page's title and, unless explanations are off (a lesson's ``explain=0``), one line of help."""
    st.title(title)
    if help and explain:
        st.caption(help)


def notice(key: str, kind: str = "success") -> None:
    """Show once the message a callback left under ``key``: text, or a (kind, text) pair."""
    message = st.session_state.pop(key, None)
    if not message:
        return
    if isinstance(message, tuple):
        kind, message = message
    say(kind, message)


def name_tip(things: str = "runs") -> None:
    """Ask an anonymous visitor to type a name, so that others can tell their runs apart."""
    if owner().name == ANONYMOUS:
        st.caption(f"Tip: type your name in the sidebar, so that others can tell your {things} apart.")
