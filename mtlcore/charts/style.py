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
from typing import Any, Sequence

import plotly.graph_objects as go

__all__ = [
    "DIVERGING",
    "FONT_SIZE",
    "LEGEND_BELOW",
    "LOG_SCALE_SPREAD",
    "MAX_POINTS",
    "PALETTE",
    "apply_layout",
    "smooth",
    "task_colors",
    "thin",
]

# Okabe & Ito's colour-blind-safe palette (yellow left out: unreadable on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999")
FONT_SIZE = 16
MAX_POINTS = 1500  # per line: enough for the eye, little enough for a laptop's browser
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0}
LOG_SCALE_SPREAD = 1e3  # weights that span more than this factor are drawn on a log axis
DIVERGING = [[0.0, "#B2182B"], [0.5, "#F7F7F7"], [1.0, "#2166AC"]]  # red = conflict, blue = agreement


def task_colors(tasks: Sequence[str]) -> dict[str, str]:
    """One fixed colour per task, by its position in the run's task list."""
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(tasks)}


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


def apply_layout(fig: go.Figure, title: str, uirevision: Any, height: int = 340, hovermode: str = "x unified",
            **extra: Any) -> go.Figure:
    extra.setdefault("margin", {"l": 60, "r": 20, "t": 60, "b": 50})
    fig.update_layout(
        title={"text": title, "font": {"size": FONT_SIZE + 2}},
        font={"size": FONT_SIZE},
        height=height,
        # Below the plot, not beside the title: in a 230 px column (1024 px projector) a legend above the
        # plot wraps onto the title.
        legend=LEGEND_BELOW,
        template="plotly_white",
        uirevision=uirevision,  # keeps zoom and hidden traces across live redraws
        hovermode=hovermode,
        **extra,
    )
    return fig
