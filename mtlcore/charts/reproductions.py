"""Figures of a paper reproduction's stored result (``mtlcore.reproduce``), as pure functions of its details.

Each builder takes the ``details`` of a ``ReproductionResult`` and returns a
``plotly.graph_objects.Figure`` in the lab's shared look (``style.apply_layout``),
so that the layout tests and the chart gallery check them like every other
chart. ``figures(name, details)`` gives a reproduction's figures in the order
the Findings page shows them (none when its details hold nothing to draw).

    relatedness_figure  MMoE and the shared bottom: test loss against the correlation
    sweep_figure        test Delta_m of every static weight (the chosen one marked) and adaptive method
    (affinity)          the pair study's two heatmaps (``studies.affinity_figure``, ``transfer_figure``):
                        the lookahead affinity Z(i->j) (Fifty et al.) and the measured transfer (Standley et al.)
    cost_figure         the toy's cost per step of each method, relative to equal weights
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..safe_text import plotly_text
from . import studies
from .style import BEST, MUTED, PALETTE, apply_layout

__all__ = ["cost_figure", "figures", "relatedness_figure", "sweep_figure"]

ARCH_NAMES = (("hard", "shared bottom"), ("mmoe", "MMoE"))


def _layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    return apply_layout(fig, title, "findings", hovermode="closest", **extra)


def relatedness_figure(details: dict[str, Any]) -> go.Figure | None:
    """Mean test loss (± std over seeds) of each model at each correlation, correlation falling to the right."""
    correlations = details.get("correlations") or []
    fig = go.Figure()
    for k, (arch, name) in enumerate(ARCH_NAMES):
        cells = [(details.get("loss", {}).get(arch, {}) or {}).get(f"{p:g}") for p in correlations]
        points = [(p, c) for p, c in zip(correlations, cells) if c]
        if points:
            fig.add_trace(go.Scatter(
                x=[p for p, _ in points], y=[c["mean"] for _, c in points],
                error_y={"type": "data", "array": [c["std"] for _, c in points], "visible": True},
                mode="lines+markers", name=name, line={"color": PALETTE[k], "width": 3}, marker={"size": 10},
                hovertemplate=f"{name}, correlation %{{x:g}}: %{{y:.4f}}<extra></extra>"))
    if not fig.data:
        return None
    fig.update_xaxes(title_text="correlation p", autorange="reversed")
    fig.update_yaxes(title_text="test MSE (lower: better)")
    return _layout(fig, "Test loss as the correlation falls", subtitle="mean ± std over seeds")


def _weight_label(point: dict[str, Any], tasks) -> str:
    """"w(digit) 0.17" rather than the stored "w(digit)=0.166667": short enough under a bar."""
    if tasks and isinstance(point.get("weight"), (int, float)):
        return f"w({plotly_text(tasks[0])}) {point['weight']:.2f}"
    return plotly_text(str(point.get("label", "")))


def sweep_figure(details: dict[str, Any]) -> go.Figure | None:
    """Test Delta_m (± std over seeds) of each static weight and each adaptive method; the chosen weight marked."""
    labels, means, stds, colours = [], [], [], []
    for point in details.get("sweep", []):
        if point.get("test"):
            labels.append(_weight_label(point, details.get("tasks")) + (" ✓" if point.get("chosen") else ""))
            means.append(point["test"]["mean"]), stds.append(point["test"]["std"])
            colours.append(BEST if point.get("chosen") else MUTED)
    for method, point in (details.get("methods") or {}).items():
        if point.get("test"):
            labels.append(plotly_text(method)), means.append(point["test"]["mean"]), stds.append(point["test"]["std"])
            colours.append(PALETTE[1])
    if not labels:
        return None
    fig = go.Figure(go.Bar(x=labels, y=means, error_y={"type": "data", "array": stds, "visible": True},
                           marker_color=colours, hovertemplate="%{x}: Δm %{y:+.2f}%<extra></extra>"))
    fig.update_yaxes(title_text="test Δm %, vs alone")
    return _layout(fig, "Static weights and adaptive methods",
                   subtitle="test Δm, mean ± std over seeds; lower: better; ✓ chosen on validation; orange: adaptive")


def _as_pair_study(details: dict[str, Any]) -> dict[str, Any] | None:
    """The affinity reproduction's details as the pair study's result (it is a pair study), or None without them."""
    if not details.get("tasks") or details.get("affinity") is None or details.get("transfer") is None:
        return None
    return {"tasks": [{"task": t} for t in details["tasks"]], "affinity": details["affinity"],
            "transfer": details["transfer"]}


def _affinity(details: dict[str, Any]) -> go.Figure | None:
    """The lookahead affinity Z(i->j) from the all-task run: the Studies page's own figure of it."""
    study = _as_pair_study(details)
    return None if study is None else studies.affinity_figure(study)


def _transfer(details: dict[str, Any]) -> go.Figure | None:
    """The transfer measured by training every pair: the Studies page's own figure of it."""
    study = _as_pair_study(details)
    return None if study is None else studies.transfer_figure(study)


def cost_figure(details: dict[str, Any]) -> go.Figure | None:
    """The toy: each method's cost per step as a multiple of equal weights' (this machine)."""
    relative = details.get("relative_cost") or {}
    if not relative:
        return None
    fig = go.Figure(go.Bar(x=[plotly_text(m) for m in relative], y=list(relative.values()), marker_color=PALETTE[0],
                           hovertemplate="%{x}: %{y:.2f}x equal weights<extra></extra>"))
    fig.update_yaxes(title_text="× equal weights", type="log")
    return _layout(fig, "Cost per step", subtitle="relative to equal weights, measured on this machine; log axis")


#: Each reproduction's figures, in the order the Findings page shows them.
BUILDERS = {"mmoe_relatedness": (relatedness_figure,), "sweep_baseline": (sweep_figure,),
            "affinity": (_affinity, _transfer), "toy": (cost_figure,)}


def figures(name: str, details: dict[str, Any]) -> list[go.Figure]:
    """Reproduction ``name``'s figures from its stored ``details`` (those with nothing to draw left out)."""
    return [f for f in (build(details) for build in BUILDERS.get(name, ())) if f is not None]
