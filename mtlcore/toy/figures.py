"""Plotly figures of the toy problem: loss landscapes with paths, and gradients as arrows.

Plain data in (numpy arrays from ``problem.py``, ``Trajectories``), a
``plotly.graph_objects.Figure`` out; no Streamlit. The file uses no torch,
but importing it loads torch all the same: ``mtlcore.toy`` imports problem.py.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..charts import PALETTE
from .problem import EXTENT, STARTS

PARETO_COLOUR = "#5f5f66"
#: Spacing of the invisible points that make a click anywhere on the landscape pick a point.
CLICK_GRID = 45


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def landscapes_figure(grid: Mapping[str, np.ndarray], pareto: np.ndarray) -> go.Figure:
    """Contours of loss 1 (scaled by 0.1), loss 2 and their average, each with the Pareto set."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss 1 (x 0.1)", "loss 2", "average of the two"),
                        horizontal_spacing=0.06)
    for col, key in enumerate(("loss_1", "loss_2", "average"), start=1):
        fig.add_trace(go.Contour(x=grid["axis"], y=grid["axis"], z=grid[key], colorscale="Viridis", ncontours=25,
                                 showscale=False, contours=dict(coloring="lines"), line=dict(width=1.5),
                                 hovertemplate="x1 %{x:.2f}, x2 %{y:.2f}: %{z:.3f}<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Scatter(x=pareto[:, 0], y=pareto[:, 1], mode="lines", name="Pareto set",
                                 line=dict(color=PARETO_COLOUR, width=6), showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(range=[-EXTENT, EXTENT], title_text="x1")
    for k in (1, 2, 3):  # each panel square
        fig.update_yaxes(range=[-EXTENT, EXTENT], scaleanchor=f"x{'' if k == 1 else k}", scaleratio=1, row=1, col=k)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), uirevision="landscapes",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def trajectories_figure(grid: Mapping[str, np.ndarray], pareto: np.ndarray, runs: Mapping[str, object],
                        colours: Mapping[str, str], picked: Sequence[float] | None = None,
                        starts: Sequence[Sequence[float]] = STARTS, clickable: bool = True) -> go.Figure:
    """The average loss's contours, the Pareto set, the starts, and each method's paths and final points.

    ``runs``: method -> ``Trajectories`` (points: starts x recorded x 2).
    ``clickable``: a grid of invisible points lets a click anywhere select a
    point. Its 2,025 markers are a third of what Chromium spends on drawing
    the chart, which a running comparison redraws every second, on the cores
    the comparison computes on; the page leaves them out while it runs (a
    click on a chart being replaced is lost anyway; one on a path still
    picks that path's point).
    """
    fig = go.Figure()
    fig.add_trace(go.Contour(x=grid["axis"], y=grid["axis"], z=grid["average"], colorscale="Greys", ncontours=30,
                             showscale=False, opacity=0.45, contours=dict(coloring="lines"), hoverinfo="skip"))
    if clickable:
        axis = np.linspace(-EXTENT, EXTENT, CLICK_GRID)
        gx, gy = np.meshgrid(axis, axis)
        fig.add_trace(go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", marker=dict(size=9, opacity=0),
                                 name="pick a point", showlegend=False,
                                 hovertemplate="click to inspect (%{x:.1f}, %{y:.1f})<extra></extra>"))
    fig.add_trace(go.Scatter(x=pareto[:, 0], y=pareto[:, 1], mode="lines", name="Pareto set",
                             line=dict(color=PARETO_COLOUR, width=7)))
    fig.add_trace(go.Scatter(x=[s[0] for s in starts], y=[s[1] for s in starts], mode="markers", name="starts",
                             marker=dict(color="black", size=12), hovertemplate="start (%{x}, %{y})<extra></extra>"))
    for method, run in runs.items():
        points = np.asarray(run.points)
        xs, ys = path_lines(points)
        colour = colours.get(method, PALETTE[0])
        # Lines, no marker per recorded point: six methods' 15,000 markers took Chromium 0.4 s to draw (80 ms
        # without them), and a running comparison redraws the chart every second. A click still picks a point:
        # the nearest one of the invisible grid.
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=method, legendgroup=method,
                                 line=dict(color=colour, width=2),
                                 hovertemplate=f"{method}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
        final = points[:, -1, :]
        reached = run.reached() if run.steps else np.zeros(len(final), bool)
        symbols = ["star" if r else "x" for r in reached] if run.finished else "circle"  # circle: still moving
        fig.add_trace(go.Scatter(
            x=final[:, 0], y=final[:, 1], mode="markers", name=f"{method}: end", legendgroup=method,
            showlegend=False, marker=dict(color=colour, size=14, symbol=symbols,
                                          line=dict(color="white", width=1)),
            hovertemplate=f"{method} after {run.steps:,} steps: (%{{x:.3f}}, %{{y:.3f}})<extra></extra>"))
    if picked is not None:
        fig.add_trace(go.Scatter(x=[picked[0]], y=[picked[1]], mode="markers", name="inspected point",
                                 marker=dict(color="#d62728", size=16, symbol="circle-open", line=dict(width=3))))
    fig.update_xaxes(range=[-EXTENT, EXTENT], title_text="x1", constrain="domain")
    fig.update_yaxes(range=[-EXTENT, EXTENT], title_text="x2", scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=40, b=10), uirevision="trajectories",
                      title="Paths on the average loss (star: ended on the Pareto set, x: did not)",
                      legend=dict(orientation="h", y=-0.12), clickmode="event+select", dragmode="pan")
    return fig


def path_lines(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every start's path (starts x recorded x 2) as one line's x and y, the paths separated by NaN (a gap).

    As float32 NumPy arrays, which Plotly sends as binary arrays: six methods' paths in a
    third of the bytes of numbers written out, and in 2 ms rather than 60 (the page redraws them every
    second while a comparison runs).
    """
    gaps = np.full((points.shape[0], 1, 2), np.nan, dtype=np.float32)
    line = np.concatenate([points.astype(np.float32), gaps], axis=1).reshape(-1, 2)
    return line[:, 0].copy(), line[:, 1].copy()


def warm_up_figures(grid: Mapping[str, np.ndarray], pareto: np.ndarray) -> None:
    """Build the paths chart once with a running and a finished path, and throw it away.

    The first chart with paths pays once what later ones do not: the fine
    Pareto polyline that ``reached`` measures against (``distance_to_pareto_set``,
    1.2 s until it was computed on two grids, now 0.2 s) and Plotly importing a
    validator the first time a trace property is used; later ones take
    0.02-0.07 s. On a server just started, beside the page loading and a
    comparison's processes, that 1.2 s had grown to 10 s, all of it before the
    first paths. Call it when a page opens.
    """
    from .trajectories import Trajectories

    points = np.zeros((len(STARTS), 2, 2))
    runs = {"running": Trajectories("running", points, 1, 0.0),
            "finished": Trajectories("finished", points, 2, 0.0, finished=True)}
    trajectories_figure(grid, pareto, runs, method_colours(list(runs)), picked=(0.0, 0.0))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def gradients_figure(point: Sequence[float], gradients: np.ndarray, directions: Mapping[str, np.ndarray],
                     colours: Mapping[str, str]) -> go.Figure:
    """At ``point``: each task's descent direction -g_t, each method's update, and the cone that lowers both.

    All arrows have unit length (their sizes differ by orders of magnitude;
    the table beside gives them). The cone is the set of directions d with
    d . g_1 < 0 and d . g_2 < 0; it is empty when the gradients point in
    opposite directions (cosine -1), the Pareto set's condition.
    """
    g1, g2 = np.asarray(gradients[0], float), np.asarray(gradients[1], float)
    fig = go.Figure()
    cone = improving_cone(g1, g2)
    if cone is not None:
        a, b = cone
        angles = np.linspace(a, b, 40)
        fig.add_trace(go.Scatter(x=[0, *np.cos(angles) * 1.25, 0], y=[0, *np.sin(angles) * 1.25, 0], fill="toself",
                                 mode="lines", line=dict(width=0), fillcolor="rgba(44,160,44,0.18)",
                                 name="lowers both losses", hoverinfo="skip"))

    def arrow(vector, name, colour, dash="solid", width=4):
        u = _unit(np.asarray(vector, float))
        fig.add_trace(go.Scatter(x=[0, u[0]], y=[0, u[1]], mode="lines+markers", name=name,
                                 line=dict(color=colour, width=width, dash=dash),
                                 marker=dict(size=[0, 12], symbol="arrow", angleref="previous", color=colour),
                                 hovertemplate=f"{name}: direction (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))

    arrow(-g1, "task 1: -g1", "#000000", "dot", 5)
    arrow(-g2, "task 2: -g2", "#7f7f7f", "dot", 5)
    for method, d in directions.items():
        arrow(d, method, colours.get(method, PALETTE[0]))
    fig.update_xaxes(range=[-1.4, 1.4], zeroline=True, showticklabels=False, constrain="domain")
    fig.update_yaxes(range=[-1.4, 1.4], zeroline=True, showticklabels=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=50, b=10), uirevision="arrows",
                      title=f"Directions at ({point[0]:.2f}, {point[1]:.2f}), unit length",
                      legend=dict(orientation="h", y=-0.05))
    return fig


def improving_cone(g1: np.ndarray, g2: np.ndarray) -> tuple[float, float] | None:
    """The angles (a, b), a < b, of the directions d with d . g1 < 0 and d . g2 < 0; None if there are none.

    Each condition is an open half-plane: the directions within 90 degrees
    of -g_t. Their intersection is the arc between the two, an arc of
    180 - angle(g1, g2) degrees; empty when the angle is 180 degrees.
    """
    if np.linalg.norm(g1) == 0 or np.linalg.norm(g2) == 0:
        return None
    c1, c2 = math.atan2(-g1[1], -g1[0]), math.atan2(-g2[1], -g2[0])
    gap = (c2 - c1 + math.pi) % (2 * math.pi) - math.pi  # signed angle from -g1 to -g2, in (-pi, pi]
    width = math.pi - abs(gap)
    if width <= 1e-9:
        return None
    middle = c1 + gap / 2
    return middle - width / 2, middle + width / 2
