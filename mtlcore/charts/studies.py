"""Figures of a study's result, as pure functions of the result dict.

Each takes the ``result`` part of a study document
(``mtlcore.studies.report.build_result``) and returns a
``plotly.graph_objects.Figure``. Missing values (runs not finished yet) are
simply not drawn.

    stl_vs_mtl_figure   one panel per task: STL and MTL bars, error bars = std over seeds
    transfer_figure     the T x T transfer matrix (Standley et al. 2020)
    affinity_figure     the T x T lookahead affinity (Fifty et al. 2021)
    sweep_figure        task A's metric against task B's, Pareto front marked
    relatedness_figure  benefit of sharing against task correlation, per architecture
    ensemble_figure     one panel per task: MTL, STL, the ensemble and one member, mean ± std
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..safe_text import plotly_text  # task names come from imported CSVs
from .diagnostics import diverging_heatmap
from .style import FONT_SIZE, GREY, PALETTE, apply_layout

__all__ = ["affinity_figure", "ensemble_figure", "figures", "relatedness_figure", "stl_vs_mtl_figure",
           "sweep_figure", "transfer_figure"]

STL_COLOR, MTL_COLOR = PALETTE[7], PALETTE[0]


def _layout(fig: go.Figure, title: str, height: int = 380, **extra: Any) -> go.Figure:
    """The shared look; a redraw as runs finish keeps the zoom."""
    return apply_layout(fig, title, "study", height=height, hovermode="closest", **extra)


def _direction(task: dict[str, Any]) -> str:
    return "higher is better" if task.get("higher_is_better") else "lower is better"


PANEL_NOTE = "mean ± std over seeds; ↑ higher is better, ↓ lower is better"


def _panel_titles(rows: list[dict[str, Any]]) -> list[str]:
    """Each panel's task, and below it its metric with an arrow: three panels share a 340 px column."""
    return [f"{plotly_text(r['task'])}<br>{r['metric'] or '...'} {'↑' if r.get('higher_is_better') else '↓'}"
            for r in rows]


def stl_vs_mtl_figure(result: dict[str, Any]) -> go.Figure:
    """One panel per task (metrics differ in scale): single-task vs multi-task, mean ± std."""
    rows = result["tasks"]
    fig = make_subplots(rows=1, cols=len(rows), subplot_titles=_panel_titles(rows), horizontal_spacing=0.12)
    for col, row in enumerate(rows, 1):
        for name, color in (("stl", STL_COLOR), ("mtl", MTL_COLOR)):
            value = row[name]
            fig.add_trace(go.Bar(
                x=["single-task" if name == "stl" else "multi-task"],
                y=[None if value is None else value["mean"]],
                error_y={"type": "data", "array": [0 if value is None else value["std"]], "visible": True},
                marker_color=color, name="single-task (STL)" if name == "stl" else "multi-task (MTL)",
                legendgroup=name, showlegend=col == 1,
                hovertemplate=(f"{plotly_text(row['task'])} {name.upper()}: %{{y:.4f}}" +
                               ("" if value is None else f" ± {value['std']:.4f} over {value['n']} seed(s)") +
                               "<extra></extra>"),
            ), row=1, col=col)
    fig.update_xaxes(showticklabels=False)  # the legend names the bars; turned labels would run into it
    fig.update_annotations(font={"size": FONT_SIZE - 3})  # the panels' titles
    return _layout(fig, "Test metric per task", barmode="group", subtitle=PANEL_NOTE)


def transfer_figure(result: dict[str, Any]) -> go.Figure:
    """Gain % of task j (column) when trained with task i (row), over j alone: blue helps, red hurts."""
    tasks = [t["task"] for t in result["tasks"]]
    return diverging_heatmap(result["transfer"], tasks, "Transfer between tasks",
                             "task j (measured)", "trained with task i", fmt="+.1f",
                             hover="%{x} with %{y}: %{z:+.1f}% vs %{x} alone", uirevision="study",
                             subtitle="gain % of j when trained with i; blue: i helps j, red: it hurts")


def affinity_figure(result: dict[str, Any]) -> go.Figure:
    """Lookahead affinity Z(i -> j) of the all-task model, mean over epochs and seeds."""
    tasks = [t["task"] for t in result["tasks"]]
    return diverging_heatmap(result["affinity"], tasks, "Lookahead affinity Z(i→j)", "effect on task j",
                             "a step on task i", fmt="+.1%", hover="a step on %{y} changes %{x}'s loss: Z = %{z:.4f}",
                             uirevision="study",
                             subtitle="% of j's loss a step on i removes, mean over epochs and seeds; blue: i helps j")


def sweep_figure(result: dict[str, Any]) -> go.Figure:
    """Task A's test metric against task B's for every weight and method; the Pareto front joined."""
    (a, b) = result["tasks"]
    fig = go.Figure()
    drawn = [p for p in result["points"] if p["values"][a["task"]] and p["values"][b["task"]]]

    def xy(points):
        return ([p["values"][a["task"]]["mean"] for p in points], [p["values"][b["task"]]["mean"] for p in points],
                [p["values"][a["task"]]["std"] for p in points], [p["values"][b["task"]]["std"] for p in points])

    front = sorted((p for p in drawn if p["on_front"]), key=lambda p: p["values"][a["task"]]["mean"])
    if len(front) > 1:
        x, y, _, _ = xy(front)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="Pareto front", hoverinfo="skip",
                                 line={"color": PALETTE[5], "width": 2, "dash": "dash"}))
    for kind, symbol, color in (("weight", "circle", PALETTE[0]), ("method", "diamond", PALETTE[1])):
        points = [p for p in drawn if p["kind"] == kind]
        if not points:
            continue
        x, y, ex, ey = xy(points)
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="markers+text", text=[p["label"] for p in points], textposition="top center",
            error_x={"type": "data", "array": ex, "visible": True, "thickness": 1},
            error_y={"type": "data", "array": ey, "visible": True, "thickness": 1},
            marker={"size": 13, "symbol": symbol, "color": color,
                    "line": {"width": [3 if p["on_front"] else 0 for p in points], "color": PALETTE[5]}},
            name="fixed weights w, 1 - w" if kind == "weight" else "automatic weighting",
            hovertemplate="%{text}<br>" + f"{plotly_text(a['task'])}: %{{x:.4f}}<br>{plotly_text(b['task'])}: "
                          "%{y:.4f}<extra></extra>",
        ))
    fig.update_xaxes(title_text=f"{plotly_text(a['task'])} {a['metric'] or ''} ({_direction(a)})")
    fig.update_yaxes(title_text=f"{plotly_text(b['task'])} {b['metric'] or ''} ({_direction(b)})")
    return _layout(fig, "Trade-off between the two tasks", height=480, subtitle="outlined: on the Pareto front")


def relatedness_figure(result: dict[str, Any]) -> go.Figure:
    """Benefit of sharing (mean gain over single-task, %) against task correlation, one line per architecture."""
    fig = go.Figure()
    for k, arch in enumerate(result["archs"]):
        rows = sorted((r for r in result["rows"] if r["arch"] == arch and r["benefit"]), key=lambda r: r["correlation"])
        fig.add_trace(go.Scatter(
            x=[r["correlation"] for r in rows], y=[r["benefit"]["mean"] for r in rows],
            error_y={"type": "data", "array": [r["benefit"]["std"] for r in rows], "visible": True},
            mode="lines+markers", name=arch, line={"color": PALETTE[k % len(PALETTE)], "width": 3},
            marker={"size": 10},
            hovertemplate=f"{arch}, correlation %{{x:g}}: %{{y:+.2f}}%<extra></extra>",
        ))
    fig.add_hline(y=0, line={"color": GREY, "width": 2})
    fig.update_xaxes(title_text="correlation between the tasks")
    fig.update_yaxes(title_text="benefit of sharing, % (above 0: helps)")
    return _layout(fig, "Benefit of sharing vs task relatedness", subtitle="mean ± std over seeds")


ENSEMBLE_BARS = (("mtl", "multi-task", MTL_COLOR), ("stl", "single-task", STL_COLOR),
                 ("ensemble", "ensemble (average)", PALETTE[2]), ("vote", "ensemble (vote)", PALETTE[3]),
                 ("member", "one member", PALETTE[5]))


def ensemble_figure(result: dict[str, Any]) -> go.Figure:
    """One panel per task: the multi-task model, single-task, the ensemble and its average member."""
    rows = result["tasks"]
    fig = make_subplots(rows=1, cols=len(rows), subplot_titles=_panel_titles(rows), horizontal_spacing=0.12)
    for col, row in enumerate(rows, 1):
        for key, name, color in ENSEMBLE_BARS:
            value = row.get(key)
            if value is None:
                continue
            fig.add_trace(go.Bar(
                x=[name], y=[value["mean"]], marker_color=color, name=name, legendgroup=key, showlegend=col == 1,
                error_y={"type": "data", "array": [value["std"]], "visible": True},
                hovertemplate=f"{plotly_text(row['task'])} {name}: %{{y:.4f}} ± {value['std']:.4f}<extra></extra>",
            ), row=1, col=col)
    fig.update_annotations(font={"size": FONT_SIZE - 3})  # the panels' titles
    fig.update_xaxes(showticklabels=False)  # the legend names the bars; turned labels would run into it
    return _layout(fig, f"Multi-task model vs an ensemble of {result.get('ensemble', 'k')} per task",
                   subtitle=PANEL_NOTE)


def figures(kind: str, result: dict[str, Any]) -> list[go.Figure]:
    """The figures of a result of ``kind``, in the order a page shows them."""
    if kind == "stl-vs-mtl":
        return [stl_vs_mtl_figure(result)]
    if kind == "pairs":
        return [transfer_figure(result)] + ([affinity_figure(result)] if result["affinity"] else [])
    if kind == "sweep":
        return [sweep_figure(result)]
    if kind == "mtl-vs-ensemble":
        return [ensemble_figure(result)]
    return [relatedness_figure(result)]
