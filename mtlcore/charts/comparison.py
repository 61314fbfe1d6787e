"""Runs side by side (the Compare page): one task's curve of every picked run in one chart.

    curves_figure("shape", "accuracy", [Curve("run a", [(1, 0.5), (2, 0.7)], "#0072B2")], higher_is_better=True)

One colour per run across every chart of the page (``series_colors`` of the
run ids), so a run is recognised from chart to chart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import plotly.graph_objects as go

from ..safe_text import plotly_text  # run labels and task names are user text
from .style import FONT_SIZE, PALETTE, apply_layout, log_axis_if_spread, short_name

__all__ = ["Curve", "curves_figure"]


@dataclass(frozen=True)
class Curve:
    """One run's line: its name in the legend, its (x, y) points, its colour."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]


def curves_figure(task: str, metric: str, curves: Sequence[Curve], *, per: str = "epoch",
                  higher_is_better: bool | None = None, uirevision: Any = "compare") -> go.Figure:
    """``metric`` of ``task`` for every run, per epoch (markers on whole epochs) or per step (lines).

    ``metric`` "accuracy" is drawn as a percentage that never leaves 0..100 %;
    a loss whose runs span more than a factor 1000 (one diverged) goes on a
    log axis, and the title says so.
    """
    fig = go.Figure()
    mode = "lines+markers" if per == "epoch" else "lines"
    for curve in curves:
        fig.add_trace(go.Scatter(x=[p[0] for p in curve.points], y=[p[1] for p in curve.points], mode=mode,
                                 name=plotly_text(short_name(curve.name)), line={"color": curve.color, "width": 2},
                                 hovertemplate=f"{plotly_text(curve.name)}: %{{y:.4g}}<extra></extra>"))
    fig.update_xaxes(title_text=per)
    note = ""
    if metric == "accuracy":  # a percentage: never draw an axis beyond 0..100 %
        fig.update_yaxes(title_text=metric, tickformat=".0%", autorangeoptions={"minallowed": 0, "maxallowed": 1})
    else:
        note = log_axis_if_spread(fig, [y for c in curves for _, y in c.points], metric, what="runs' values")
    if per == "epoch":  # whole epochs only: no "epoch 1.5" ticks
        last = max((max((p[0] for p in c.points), default=1) for c in curves), default=1)
        fig.update_xaxes(tick0=1, dtick=max(1, -(-int(last) // 10)))
    if not any(c.points for c in curves):
        fig.add_annotation(text="No points yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                           font={"size": FONT_SIZE - 2, "color": "grey"})
    better = "" if higher_is_better is None else ("higher" if higher_is_better else "lower") + " is better"
    what = f"validation {metric}" if per == "epoch" else f"training {metric}"
    subtitle = ", ".join(part for part in (what, better, note) if part)
    return apply_layout(fig, plotly_text(task), uirevision, height=300, subtitle=subtitle)
