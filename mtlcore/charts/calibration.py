"""Calibration (Guo et al., ICML 2017): the reliability diagram and the probabilities against temperature.

    reliability_figure(summary["calibration"]["shape"], "shape")   accuracy against confidence per bin
    temperature_figure(logits, classes, 1.0, fitted=1.7)           each class's probability as T moves

They take the plain data ``mtlcore.calibration`` writes into a run's summary
and ``mtlcore.predict`` returns.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from ..safe_text import plotly_text  # task and class names are user text
from .style import PALETTE, apply_layout, short_name

__all__ = ["has_calibration", "reliability_figure", "temperature_figure", "temperature_grid"]

BEFORE, AFTER, IDEAL = PALETTE[5], PALETTE[0], PALETTE[7]  # vermilion as trained, blue fitted, grey ideal


def has_calibration(summary: Mapping[str, Any] | None, task: str) -> bool:
    """Whether ``summary`` holds the reliability bins of ``task`` (classification runs since calibration)."""
    return bool(((summary or {}).get("calibration") or {}).get(task, {}).get("bins"))


def reliability_figure(calibration: Mapping[str, Any], task: str, height: int = 380) -> go.Figure:
    """The reliability diagram of one task: per confidence bin, the accuracy before and after temperature scaling.

    Bars of a calibrated model reach the diagonal; bars below it are
    over-confident. Empty bins are left out; the hover gives each bin's count.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": IDEAL, "dash": "dash"},
                             name="perfectly calibrated", hoverinfo="skip"))
    t = float(calibration.get("temperature", 1.0))
    for key, color, name in (("bins", BEFORE, "T = 1 (as trained)"), ("bins_calibrated", AFTER, f"T = {t:.2f} (fitted)")):
        bins = [b for b in calibration.get(key, []) if b.get("count")]
        if not bins:
            continue
        fig.add_trace(go.Scatter(
            x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
            marker={"size": [6 + 14 * math.sqrt(b["count"] / max(c["count"] for c in bins)) for b in bins],
                    "color": color}, line={"color": color, "width": 2}, name=name,
            customdata=[[b["lower"], b["upper"], b["count"]] for b in bins],
            hovertemplate=("confidence %{customdata[0]:.2f}-%{customdata[1]:.2f}: %{customdata[2]} predictions, "
                           "accuracy %{y:.2f}, mean confidence %{x:.2f}<extra></extra>")))
    fig.update_xaxes(title_text="confidence", range=[0, 1.02])
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02])
    return apply_layout(fig, f"{plotly_text(task)}: reliability", "reliability", height=height, hovermode="closest",
                        subtitle="test split; confidence: the largest probability; below the diagonal: "
                                 "over-confident")


def temperature_grid(lo: float = 0.1, hi: float = 10.0, points: int = 81) -> list[float]:
    """Temperatures spaced evenly on a log scale from ``lo`` to ``hi``."""
    return [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (points - 1)) for i in range(points)]


def temperature_figure(logits: Sequence[float], classes: Sequence[str], temperature: float,
                       fitted: float | None = None, task: str = "", height: int = 380) -> go.Figure:
    """Each class's probability softmax(logits / T) as T goes from 0.1 (sharp) to 10 (flat).

    A solid line marks the chosen ``temperature``, a dashed one the ``fitted`` value.
    """
    from ..calibration import softmax  # here, not at the top: mtlcore.calibration imports torch, the charts must not

    grid = temperature_grid()
    fig = go.Figure()
    curves = [softmax(logits, t) for t in grid]
    for i, name in enumerate(classes):
        fig.add_trace(go.Scatter(x=grid, y=[c[i] for c in curves], mode="lines", name=plotly_text(short_name(name)),
                                 line={"color": PALETTE[i % len(PALETTE)], "width": 2},
                                 hovertemplate=f"{plotly_text(name)}: %{{y:.1%}} at T = %{{x:.2f}}<extra></extra>"))
    # The labels as annotations of their own: on a log axis an annotation's x is log10(T), which add_vline's
    # own label gets wrong (it drew "T = 1" at T = 10). Short, on the side with more room: 240 px charts.
    marks = [(temperature, f"T = {temperature:.2f}", {"color": "#000000", "width": 2}, 1.0, "top")]
    if fitted is not None:
        marks.append((fitted, f"fitted {fitted:.2f}", {"color": AFTER, "width": 2, "dash": "dash"}, 0.0, "bottom"))
    for value, text, line, y, anchor in marks:
        fig.add_vline(x=value, line=line)
        fig.add_annotation(x=math.log10(value), y=y, yref="paper", text=text, showarrow=False, yanchor=anchor,
                           xanchor="left" if value < 1.5 else "right", xshift=4 if value < 1.5 else -4,
                           font={"color": line["color"]}, bgcolor="rgba(255,255,255,0.8)")
    fig.update_xaxes(title_text="temperature (log)", type="log",
                     tickvals=[0.1, 0.3, 1, 3, 10], ticktext=["0.1", "0.3", "1", "3", "10"], tickangle=0, range=[-1, 1])
    fig.update_yaxes(title_text="probability", range=[0, 1], tickformat=".0%")
    title = f"{plotly_text(task)} against temperature" if task else "Probability against temperature"
    return apply_layout(fig, title, "temperature", height=height, hovermode="closest")
