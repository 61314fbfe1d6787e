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
    "log_axis_if_spread",
    "series_colors",
    "smooth",
    "spread",
    "task_colors",
    "thin",
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


def apply_layout(fig: go.Figure, title: str, uirevision: Any, height: int = 340, hovermode: str = "x unified",
                 **extra: Any) -> go.Figure:
    """The shared look: title, fonts, height, white template, the legend below the plot, ``uirevision``.

    ``extra`` goes to ``update_layout`` (e.g. ``margin``, ``showlegend``, ``barmode``).
    """
    extra.setdefault("margin", MARGIN)
    fig.update_layout(
        title={"text": title, "font": {"size": FONT_SIZE + 2}},
        font={"size": FONT_SIZE},
        height=height,
        legend=LEGEND_BELOW,
        template="plotly_white",
        uirevision=uirevision,  # keeps zoom and hidden traces across live redraws
        hovermode=hovermode,
        **extra,
    )
    return fig
