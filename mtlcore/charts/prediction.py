"""A prediction of one classification task: every class's probability as a horizontal bar.

    probability_figure({"circle": 0.7, "square": 0.2, "triangle": 0.1}, best="circle")
"""
from __future__ import annotations

from typing import Mapping

import plotly.graph_objects as go

from ..safe_text import plotly_text  # class names come from imported CSVs: shown as typed, never as tags
from .style import BEST, FONT_SIZE, MUTED, apply_layout

__all__ = ["probability_figure"]


def probability_figure(probabilities: Mapping[str, float], best: str, uirevision: str = "prediction") -> go.Figure:
    """One bar per class, the predicted one (``best``) coloured, each labelled with its percentage.

    The bars keep the classes' order (top to bottom); the axis runs 0..100 %,
    so two predictions can be compared at a glance.
    """
    names = list(probabilities)
    values = [probabilities[n] for n in names]
    fig = go.Figure(go.Bar(
        x=values, y=[plotly_text(n) for n in names], orientation="h", text=[f"{v:.0%}" for v in values],
        textposition="auto", marker_color=[BEST if n == best else MUTED for n in names],
        hovertemplate="%{y}: %{x:.1%}<extra></extra>", showlegend=False,
    ))
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    apply_layout(fig, "", uirevision, height=max(160, 30 * len(names) + 70), hovermode="closest",
                 showlegend=False, margin={"l": 10, "r": 10, "t": 10, "b": 40})
    fig.update_layout(font={"size": FONT_SIZE - 2})  # a narrow column beside the picture
    return fig
