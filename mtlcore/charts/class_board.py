"""The class board's figures: every student's run on two tasks' metrics with the class's Pareto front, and
the answers given to a lesson's questions.

Drawn for a projector at the back of a room: larger type than the other
charts, thick markers, the palette's darkest colours on white, each point
labelled with the student's name (user text, escaped by ``plotly_text``:
Plotly renders a subset of HTML, so a name could otherwise carry a link).
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from ..safe_text import plotly_text
from .style import FONT_SIZE, PALETTE, apply_layout

BOARD_FONT = FONT_SIZE + 6  # readable from the back of a classroom at 1024x768


def _axis_title(task: str, metric: str) -> str:
    if metric == "accuracy":
        return f"{task} accuracy (%) — higher is better"
    return f"{task} {metric.upper()} — lower is better"


def _shown(value: float, metric: str) -> float:
    return value * 100 if metric == "accuracy" else value


def class_board_figure(points: Sequence[tuple[str, float, float]], x: tuple[str, str], y: tuple[str, str],
                       front: Sequence[tuple[float, float]] = (), uirevision: str = "board") -> go.Figure:
    """One marker per student at (x task's metric, y task's metric), and the front joining the unbeaten ones.

    ``points``: (student, x value, y value) in the metrics' own units (accuracy
    as a fraction); ``x``/``y``: (task, metric); ``front``: the Pareto points,
    in the same units (mtlcore.lessons.pareto_front).
    """
    fig = go.Figure()
    if front:
        fig.add_trace(go.Scatter(
            x=[_shown(p[0], x[1]) for p in front], y=[_shown(p[1], y[1]) for p in front], mode="lines",
            line={"color": PALETTE[5], "width": 4, "dash": "dash"}, name="the class's front (no one beats these on both)",
            hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=[_shown(p[1], x[1]) for p in points], y=[_shown(p[2], y[1]) for p in points], mode="markers+text",
        text=[plotly_text(p[0]) for p in points], textposition="top center", textfont={"size": BOARD_FONT - 4},
        marker={"size": 20, "color": PALETTE[0], "line": {"width": 2, "color": "#000000"}},
        name="one student (their best run)",
        hovertemplate="%{text}<br>%{x:.3g}, %{y:.3g}<extra></extra>"))
    apply_layout(fig, f"Every student on {x[0]} and {y[0]}", uirevision, height=520, hovermode="closest",
                 margin={"l": 90, "r": 30, "t": 70, "b": 90})
    fig.update_layout(font={"size": BOARD_FONT, "color": "#000000"}, title={"font": {"size": BOARD_FONT + 4}})
    fig.update_xaxes(title={"text": _axis_title(*x)}, gridcolor="#BBBBBB", zeroline=False)
    fig.update_yaxes(title={"text": _axis_title(*y)}, gridcolor="#BBBBBB", zeroline=False)
    return fig


def answers_figure(question: str, shares: Sequence[tuple[str, int]], uirevision: str = "answers") -> go.Figure:
    """How many students gave each answer: one horizontal bar per choice, the count written on it."""
    answers = [plotly_text(a) for a, _ in shares][::-1]  # the first choice on top
    counts = [n for _, n in shares][::-1]
    fig = go.Figure(go.Bar(x=counts, y=answers, orientation="h", text=counts, textposition="outside",
                           marker={"color": PALETTE[2], "line": {"width": 1, "color": "#000000"}},
                           hovertemplate="%{y}: %{x}<extra></extra>"))
    apply_layout(fig, plotly_text(question), uirevision, height=120 + 60 * max(1, len(shares)), hovermode="closest",
                 margin={"l": 20, "r": 40, "t": 70, "b": 40}, showlegend=False)
    fig.update_layout(font={"size": BOARD_FONT - 2, "color": "#000000"}, title={"font": {"size": BOARD_FONT}})
    fig.update_xaxes(title={"text": "students"}, dtick=1, rangemode="tozero")
    fig.update_yaxes(automargin=True)
    return fig
