"""The one look of every chart: palette, fonts, margins, legend placement, and the value helpers.

Figures are made for a classroom projector: large fonts, a colour-blind-safe
palette (Okabe & Ito 2008, "Color Universal Design") with one fixed colour per
task, legends below the plot (never beside the title, where they wrap onto it
in a narrow column), and ``uirevision`` in the layout, so that a chart redrawn
every second with new points keeps the zoom a person chose.

Nothing here imports Streamlit or torch.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import plotly.graph_objects as go

__all__ = [
    "BEST",
    "DIVERGING",
    "FONT_SIZE",
    "GREY",
    "LEGEND_BELOW",
    "LOG_SCALE_SPREAD",
    "MARGIN",
    "MAX_POINTS",
    "MUTED",
    "PALETTE",
    "apply_layout",
    "legend_entries",
    "legend_rows",
    "log_axis_if_spread",
    "series_colors",
    "short_name",
    "smooth",
    "spread",
    "task_colors",
    "thin",
    "wrap",
]

# Okabe & Ito's colour-blind-safe palette (yellow left out: unreadable on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999")
BEST, MUTED = PALETTE[2], "#C9CED6"  # the chosen bar (bluish green) among the others (light grey)
GREY = "#777777"  # reference lines: zero, chance, the diagonal
FONT_SIZE = 16
MAX_POINTS = 1500  # per line: enough for the eye, little enough for a laptop's browser
# Below the plot, never beside the title: in a 230 px column (a 1024 px projector) a legend above the plot
# wraps onto the title. Plotly grows the bottom margin to fit it.
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0}
MARGIN = {"l": 60, "r": 20, "t": 60, "b": 50}
# Sized for a 240 px column at these fonts (Plotly never wraps a title or a legend entry by itself).
NARROW_PX = 240
TITLE_CHARS, SUBTITLE_CHARS, LEGEND_CHARS = 24, 34, 24
TITLE_TOP_PX, TITLE_LINE_PX, LEGEND_ROW_PX, CHAR_PX = 24, 23, 24, 8.5
LOG_SCALE_SPREAD = 1e3  # values that span more than this factor are drawn on a log axis
DIVERGING = [[0.0, "#B2182B"], [0.5, "#F7F7F7"], [1.0, "#2166AC"]]  # red = conflict, blue = agreement


def series_colors(keys: Sequence[Any]) -> dict[Any, str]:
    """One fixed colour per key (a task, a run, a method), by its position in ``keys``."""
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}


def task_colors(tasks: Sequence[str]) -> dict[str, str]:
    """One fixed colour per task, by its position in the run's task list."""
    return series_colors(tasks)


def thin(points: Sequence[Any], limit: int = MAX_POINTS) -> list[Any]:
    """Every k-th point so that at most about ``limit`` remain; the last point is always kept."""
    points = list(points)
    if len(points) <= limit:
        return points
    step = -(-len(points) // limit)
    kept = points[::step]
    return kept if kept[-1] is points[-1] else kept + [points[-1]]


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, debiased (as TensorBoard's smoothing), skipping non-finite values."""
    out, avg, norm = [], 0.0, 0.0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(float("nan"))
            continue
        avg = weight * avg + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(avg / norm)
    return out


def spread(values: Iterable[Any]) -> tuple[float, float] | None:
    """(smallest, largest) of the positive finite numbers in ``values`` when they span more than
    ``LOG_SCALE_SPREAD``, else None: on a linear axis every line but the largest would lie flat at 0."""
    positive = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    if positive and max(positive) / min(positive) > LOG_SCALE_SPREAD:
        return min(positive), max(positive)
    return None


def log_axis_if_spread(fig: go.Figure, values: Iterable[Any], axis_title: str, what: str = "values") -> str:
    """Draw the y axis on a log scale when ``values`` span more than ``LOG_SCALE_SPREAD``; say so.

    Returns the note for the title ("" when the axis stays linear, starting
    at 0): a chart that silently changes scale would mislead.
    """
    extremes = spread(values)
    if extremes is None:
        fig.update_yaxes(title_text=axis_title, rangemode="tozero")
        return ""
    fig.update_yaxes(title_text=f"{axis_title} (log scale)", type="log")
    return f"log scale: the {what} span {extremes[0]:.2g} to {extremes[1]:.2g}"


def wrap(text: str, limit: int) -> list[str]:
    """``text`` in lines of at most about ``limit`` characters, broken at spaces (Plotly never wraps a title)."""
    lines: list[str] = []
    for part in text.split("<br>"):
        line = ""
        for word in part.split(" "):
            if line and len(line) + 1 + len(word) > limit:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def short_name(name: str, limit: int = LEGEND_CHARS) -> str:
    """A legend entry that fits a narrow column: its start and its end around an ellipsis.

    Both ends: runs' names often share their start ("pcgrad · STL shape ·
    ID", "pcgrad · ID") and differ at the end.
    """
    if len(name) <= limit:
        return name
    head = (limit - 1) // 2
    return name[:head].rstrip() + "…" + name[len(name) - (limit - 1 - head):].lstrip()


def legend_entries(fig: go.Figure) -> list[str]:
    """The names the legend will show (none when Plotly hides the legend: one entry, or showlegend off)."""
    if fig.layout.showlegend is False:
        return []
    names = [t.name or "" for t in fig.data if t.showlegend is not False]
    explicit = any(t.showlegend is True for t in fig.data)
    return names if len(names) > 1 or explicit else []


def legend_rows(names: Sequence[str], width: int = NARROW_PX) -> int:
    """How many rows a horizontal legend of ``names`` takes in a chart ``width`` px wide (an estimate).

    Plotly lays the entries out on a grid as wide as the widest one, inside
    the plot area's width.
    """
    if not names:
        return 0
    widest = 40 + CHAR_PX * max(len(n) for n in names)  # the line sample, its gap, the text
    per_row = max(1, int((width - MARGIN["l"] - MARGIN["r"]) // widest))
    return -(-len(names) // per_row)


def apply_layout(fig: go.Figure, title: str, uirevision: Any, height: int = 340, hovermode: str = "x unified",
                 subtitle: str = "", **extra: Any) -> go.Figure:
    """The shared look: title (and a smaller subtitle), fonts, white template, the legend below, ``uirevision``.

    Call it after the traces are added. Made for a 240 px column (a 1024 px
    projector) as much as for a wide one:

    - the title is wrapped into lines of ``TITLE_CHARS``, the subtitle of
      ``SUBTITLE_CHARS``, and the top margin grows with the lines, so that
      neither is cut nor runs into the plot;
    - the legend sits below the axis title (never beside the title, where
      it would wrap onto it), in a bottom margin sized for the rows it takes
      in a narrow column; the figure grows by that much, the plot keeps
      ``height`` minus the default margins.

    ``extra`` goes to ``update_layout`` (e.g. ``margin``, ``showlegend``, ``barmode``).
    """
    margin = {**MARGIN, **extra.pop("margin", {})}
    lines = (wrap(title, TITLE_CHARS) if title else []) + (wrap(subtitle, SUBTITLE_CHARS) if subtitle else [])
    small = len(wrap(subtitle, SUBTITLE_CHARS)) if subtitle else 0
    text = "<br>".join(lines[:len(lines) - small] +
                       [f"<span style='font-size:{FONT_SIZE - 3}px'>{n}</span>" for n in lines[len(lines) - small:]])
    if lines:  # Plotly draws the lines downwards from the first, whatever the anchor: room for all of them
        margin["t"] = max(margin["t"], TITLE_TOP_PX + TITLE_LINE_PX * len(lines) + 12)
        panel_titles = [a.text or "" for a in fig.layout.annotations if a.yref == "paper" and (a.y or 0) >= 1]
        if panel_titles:  # subplot titles sit just above the plot, under the title
            margin["t"] += TITLE_LINE_PX * max(t.count("<br>") + 1 for t in panel_titles)
    if "showlegend" in extra:
        fig.update_layout(showlegend=extra["showlegend"])
    rows = legend_rows(legend_entries(fig))
    axis_room = margin["b"] + 14  # the tick labels and the axis title, then the legend
    if rows:
        margin["b"] = axis_room + LEGEND_ROW_PX * rows + 10
    plot_height = max(height - MARGIN["t"] - MARGIN["b"], 120)
    total = plot_height + margin["t"] + margin["b"]
    fig.update_layout(
        # Left-aligned at the top, its first line TITLE_TOP_PX down (Plotly puts a multi-line title's first
        # line at the anchor and the others below it, so the anchor is set in pixels from the top).
        title={"text": text, "font": {"size": FONT_SIZE + 2}, "x": 0, "xref": "container", "xanchor": "left",
               "pad": {"l": 10}, "y": 1 - TITLE_TOP_PX / total, "yref": "container", "yanchor": "top"},
        legend={**LEGEND_BELOW, "y": -axis_room / plot_height},
        font={"size": FONT_SIZE},
        height=total,
        margin=margin,
        template="plotly_white",
        uirevision=uirevision,  # keeps zoom and hidden traces across live redraws
        hovermode=hovermode,
        **extra,
    )
    return fig
