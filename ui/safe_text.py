"""User text on a page, shown as text and never as markup: what the pages call.

The rules themselves live in ``mtlcore.safe_text`` (the charts, built in
mtlcore, need them too); this module re-exports them for the pages and adds
the Streamlit calls that take a message which may quote user text:

    from ui.safe_text import md, say
    st.markdown(f"**{md(task)}**: {md(class_name)}")   # never unsafe_allow_html with user text
    say("error", str(error))                           # an error that quotes a label or a name

Rule for pages: every value a user could have typed (labels, owner names,
dataset, task and class names, study labels, run messages, error sentences
that quote them) passes through ``md`` before it reaches st.markdown,
st.caption, st.error/warning/info/success, st.toast, st.subheader, a widget's
label or help, or a progress bar's text. Option lists of select boxes and
dataframe cells are plain text already and need nothing.
"""
from __future__ import annotations

import streamlit as st

from mtlcore.safe_text import csv_cell, html_text, md_text, plotly_text, tex_text

__all__ = ["csv_cell", "html_text", "md", "md_text", "plotly_text", "say", "tex_text"]

md = md_text  # short, because pages use it inside f-strings

_KINDS = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success, "caption": st.caption}


def say(kind: str, message: object) -> None:
    """Show ``message`` (e.g. an error's sentence) as literal text in an error, warning, info, success or caption."""
    _KINDS[kind](md_text(message))


def toast(message: object, icon: str | None = None) -> None:
    """A toast whose text is shown literally."""
    st.toast(md_text(message), icon=icon)
