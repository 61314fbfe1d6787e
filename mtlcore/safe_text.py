"""Text that users typed, made safe for where it is shown: the one place for these rules.

Labels, owner names, dataset, task and class names (an imported CSV's header
and cells), study labels and error messages that quote them are all user
text. Shown raw, they are code:

- in HTML (``st.markdown(..., unsafe_allow_html=True)``) an ``<iframe
  srcdoc="<script>...">`` runs script in the app's origin for everyone who
  opens the page (stored cross-site scripting): ``html_text`` escapes it.
  The pages never pass user text to ``unsafe_allow_html`` at all.
- in Markdown (``st.markdown``, ``st.caption``, widget labels and help)
  ``[click](https://...)``, ``![](https://tracker)``, ``:red[...]`` or a
  ``#`` heading change the page: ``md_text`` backslash-escapes every
  character Markdown (and Streamlit's ``:directive[...]``, ``$math$``) gives
  a meaning to, and folds line breaks into spaces.
- in Plotly titles, legends, axis labels and hover text, a subset of HTML
  (``<a href>``, ``<span style>``, ``<br>``) is rendered: ``plotly_text``
  escapes it; Plotly shows ``&lt;`` as ``<``, so the text reads as typed.
- in LaTeX (``st.latex``), ``\\`` starts a command: ``tex_text`` escapes
  every special character.
- in a CSV file opened by a spreadsheet, a cell starting with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return is a formula ("CSV injection"):
  ``csv_cell`` prefixes it with a single quote, as OWASP's rule says
  (https://owasp.org/www-community/attacks/CSV_Injection).
"""
from __future__ import annotations

import html
import re
from typing import Any

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these are the ones that
# mean something to Markdown, GitHub's extensions, Streamlit's directives (:red[...], :material/x:),
# emoji shortcodes and its $math$.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=\"'^])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c]+")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def html_text(value: Any) -> str:
    """``value`` as text for HTML: ``<``, ``>``, ``&`` and both quotes escaped."""
    return html.escape(str(value), quote=True)


def md_text(value: Any) -> str:
    """``value`` as literal text inside Markdown: one line, every Markdown character escaped.

    ``md_text("[x](http://a)")`` shows ``[x](http://a)``, not a link; HTML
    tags show as typed too.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(value)))


def tex_text(value: Any) -> str:
    """``value`` as literal text inside LaTeX's ``\\text{...}`` (KaTeX): every special character escaped."""
    specials = {"\\": r"\textbackslash{}", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}
    text = _LINE_BREAKS.sub(" ", str(value))
    return "".join(specials.get(ch) or ("\\" + ch if ch in "_&%$#{}" else ch) for ch in text)


def plotly_text(value: Any) -> str:
    """``value`` for a Plotly title, trace name, tick or hover text: shown as typed, no tags rendered."""
    return html.escape(str(value), quote=False)


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: text starting with a formula character gets a leading ``'``.

    Numbers (a negative result is data, not a formula) and other values are left as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def looks_like_formula(text: str) -> bool:
    """Whether ``text`` starts like a spreadsheet formula (what ``csv_cell`` neutralises)."""
    return str(text).startswith(FORMULA_STARTS)
