"""Training curves: the loss per step, one task per epoch, the task weights over time."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..safe_text import plotly_text  # task names come from imported CSVs: shown as typed, never as tags
from .style import GREY, MAX_POINTS, PALETTE, apply_layout, log_axis_if_spread, short_name, smooth, task_colors, thin

__all__ = ["epoch_figure", "step_loss_figure", "weights_figure", "weights_vary"]

def step_loss_figure(steps: Sequence[Mapping[str, Any]], tasks: Sequence[str], uirevision: Any = "run",
                     smoothing: float = 0.9, max_points: int = MAX_POINTS) -> go.Figure:
    """Training loss of every task per step: faint raw values and a bold smoothed line.

    The smoothing runs over every step; only the drawn points are thinned.
    """
    colors = task_colors(tasks)
    keep = set(range(0, len(steps), max(1, -(-len(steps) // max_points)))) | {len(steps) - 1}
    x = [s["step"] for i, s in enumerate(steps) if i in keep]
    fig = go.Figure()
    for t in tasks:
        raw = [s.get("loss", {}).get(t) for s in steps]
        smoothed = smooth([float("nan") if v is None else v for v in raw], smoothing)
        fig.add_trace(go.Scatter(x=x, y=[v for i, v in enumerate(raw) if i in keep], mode="lines",
                                 line={"color": colors[t], "width": 1}, opacity=0.3, name=f"{plotly_text(short_name(t))} (raw)",
                                 legendgroup=t, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=[v for i, v in enumerate(smoothed) if i in keep], mode="lines",
                                 line={"color": colors[t], "width": 3}, name=plotly_text(short_name(t)), legendgroup=t))
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="training loss", rangemode="tozero")
    return apply_layout(fig, "Training loss per step", uirevision)


def epoch_figure(epochs: Sequence[Mapping[str, Any]], task: str, metric: str, color: str = PALETTE[0],
                 chance: float | None = None, unit: str = "", uirevision: Any = "run") -> go.Figure:
    """One task per epoch: loss (left) and its metric (right), training dashed, validation solid.

    ``chance``: the accuracy of guessing, drawn as a grey line (classification).
    """
    label = {"accuracy": "accuracy", "mse": "MSE per pixel",
             "mae": f"mean abs. error{f' ({plotly_text(unit)})' if unit else ''}"}.get(
        metric, plotly_text(metric))
    # The panels' names as their y-axis titles, not subplot titles: those sit above the plot, where the
    # figure's title needs the room in a narrow column.
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.2)
    x = [e["epoch"] for e in epochs]
    for col, key in ((1, "loss"), (2, metric)):
        for split, dash, width in (("train", "dash", 2), ("val", "solid", 3)):
            y = [e.get(split, {}).get(task, {}).get(key) for e in epochs]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{split}",
                                     line={"color": color, "dash": dash, "width": width},
                                     marker={"size": 7}, showlegend=(col == 1),
                                     legendgroup=split), row=1, col=col)
    if chance is not None and metric == "accuracy":
        fig.add_hline(y=chance, line={"color": GREY, "dash": "dot", "width": 2}, row=1, col=2,
                      annotation_text="chance", annotation_position="bottom right")
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    else:
        fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text=label, row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(x) <= 15 else None)
    return apply_layout(fig, f"{plotly_text(task)} per epoch", uirevision, height=330, showlegend=False,
                        subtitle="dashed: training, solid: validation")


def weights_vary(steps: Sequence[Mapping[str, Any]]) -> bool:
    """True when some task's logged weight changed during training (a method that adapts them)."""
    seen: dict[str, float] = {}
    for s in steps:
        for t, w in (s.get("weight") or {}).items():
            if t in seen and abs(seen[t] - w) > 1e-9:
                return True
            seen.setdefault(t, w)
    return False


def weights_figure(steps: Sequence[Mapping[str, Any]], tasks: Sequence[str], uirevision: Any = "run",
                   max_points: int = MAX_POINTS) -> go.Figure:
    """The effective weight of every task per step (slider x method)."""
    colors = task_colors(tasks)
    points = thin(steps, max_points)
    x = [s["step"] for s in points]
    fig = go.Figure()
    for t in tasks:
        fig.add_trace(go.Scatter(x=x, y=[(s.get("weight") or {}).get(t) for s in points], mode="lines",
                                 line={"color": colors[t], "width": 3}, name=plotly_text(short_name(t))))
    fig.update_xaxes(title_text="training step")
    # A vanishing gradient can give one weight 1e10 (PCGrad's effective weights, Yu et al. 2020, per step
    # against the loss): on a linear axis every other line is flat at 0. Log scale keeps them all readable.
    note = log_axis_if_spread(fig, [w for s in points for w in (s.get("weight") or {}).values()], "weight",
                              what="weights")
    return apply_layout(fig, "Task weights over time", uirevision, height=300, subtitle=note)
