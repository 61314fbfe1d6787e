"""Gradient diagnostics: task x task heatmaps (cosine, affinity) and the cosine per step."""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go

from ..safe_text import plotly_text  # task names come from imported CSVs: shown as typed, never as tags
from .style import DIVERGING, FONT_SIZE, GREY, PALETTE, apply_layout, short_name

__all__ = [
    "affinity_figure",
    "cosine_figure",
    "cosine_lines_figure",
    "diverging_heatmap",
    "has_diagnostics",
    "latest_epoch_diagnostics",
]

def has_diagnostics(steps: Iterable[Mapping[str, Any]], epochs: Iterable[Mapping[str, Any]]) -> bool:
    """True when any step or epoch log carries non-empty gradient diagnostics."""
    return any(s.get("diagnostics") for s in steps) or any(e.get("diagnostics") for e in epochs)


def latest_epoch_diagnostics(epochs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The diagnostics of the most recent epoch that has some, or {}."""
    for e in reversed(epochs):
        if e.get("diagnostics"):
            return dict(e["diagnostics"])
    return {}


def _mean_over_steps(steps: Sequence[Mapping[str, Any]], key: str) -> dict[str, float]:
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for s in steps:
        for k, v in ((s.get("diagnostics") or {}).get(key) or {}).items():
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


def _matrix(values: Mapping[str, float], tasks: Sequence[str], sep: str, symmetric: bool,
            diagonal: float | None) -> list[list[float | None]]:
    rows = []
    for a in tasks:
        row = []
        for b in tasks:
            if a == b and diagonal is not None:
                row.append(diagonal)
                continue
            v = values.get(f"{a}{sep}{b}")
            if v is None and symmetric:
                v = values.get(f"{b}{sep}{a}")
            row.append(v)
        rows.append(row)
    return rows


def diverging_heatmap(z: list[list[float | None]] | None, tasks: Sequence[str], title: str, x_title: str,
                      y_title: str, *, fmt: str, hover: str, zmax: float | None = None, uirevision: Any = "heatmap",
                      extra_text: list[list[str]] | None = None, subtitle: str = "") -> go.Figure:
    """A task x task matrix coloured around 0 (blue above, red below), each cell labelled.

    ``zmax`` None scales the colours to the largest |value|; a missing ``z``
    draws an empty grid. Used for gradient cosines, affinities and transfer.
    No colour bar: every cell carries its number, and the bar's width is what
    a 240 px column (1024 px projector) cannot spare; ``subtitle`` says what
    blue and red mean.
    """
    z = z or [[None] * len(tasks) for _ in tasks]
    if zmax is None:
        finite = [abs(v) for row in z for v in row if v is not None and math.isfinite(v)]
        zmax = max(finite, default=0.0) or 1.0
    text = [[("" if v is None else format(v, fmt)) for v in row] for row in z]
    if extra_text is not None:
        text = [[t + e for t, e in zip(tr, er)] for tr, er in zip(text, extra_text)]
    fig = go.Figure(go.Heatmap(
        z=z, x=[plotly_text(t) for t in tasks], y=[plotly_text(t) for t in tasks], zmin=-zmax, zmax=zmax, zmid=0, colorscale=DIVERGING,
        text=text, texttemplate="%{text}", textfont={"size": FONT_SIZE - 2 if len(tasks) <= 3 else FONT_SIZE - 4},
        hovertemplate=hover + "<extra></extra>", showscale=False,
    ))
    small = {"size": FONT_SIZE - 2 if len(tasks) <= 3 else FONT_SIZE - 4}  # task names as ticks
    fig.update_xaxes(title_text=x_title, side="bottom", tickfont=small)
    # The rows' meaning in the subtitle, not as a y-axis title: its width is the cells' in a narrow column.
    fig.update_yaxes(autorange="reversed", tickfont=small)
    n = len(tasks)
    return apply_layout(fig, title, uirevision, height=max(300, 90 * n + 140), hovermode="closest",
                        subtitle="; ".join(p for p in (f"rows: {y_title}", subtitle) if p),
                        margin={"l": 20, "r": 10})


def cosine_figure(steps: Sequence[Mapping[str, Any]], epochs: Sequence[Mapping[str, Any]], tasks: Sequence[str],
                  uirevision: Any = "run") -> go.Figure:
    """T x T cosine between the tasks' gradients on the shared parameters.

    The latest epoch's mean (with the share of steps in conflict), or, before
    the first epoch ends, the mean over the measured steps so far.
    """
    latest = latest_epoch_diagnostics(epochs)
    cosines = latest.get("cosine_mean") or _mean_over_steps(steps, "cosine")
    conflict = latest.get("conflict_fraction") or {}
    z = _matrix(cosines, tasks, "|", symmetric=True, diagonal=1.0)
    frac = _matrix(conflict, tasks, "|", symmetric=True, diagonal=None)
    # Only the share in the cell, smaller, and the word once in the title: "67 % conflict" overflowed the cells.
    extra = [[("" if f is None or a == b else f"<br><span style='font-size:{FONT_SIZE - 4}px'>{f:.0%}</span>")
              for f, b in zip(row, tasks)] for row, a in zip(frac, tasks)]
    where = "last epoch" if latest.get("cosine_mean") else "steps so far"
    subtitle = "blue: the gradients agree, red: they conflict" + (
        "; small %: share of steps in conflict" if conflict else "")
    return diverging_heatmap(z, tasks, f"Gradient cosine ({where})", "task", "task", fmt=".2f",
                             hover="cos(%{y}, %{x}) = %{z:.2f}", zmax=1.0, uirevision=uirevision, extra_text=extra,
                             subtitle=subtitle)


def cosine_lines_figure(steps: Sequence[Mapping[str, Any]], tasks: Sequence[str], uirevision: Any = "run") -> go.Figure:
    """Cosine of every task pair at each measured step; below the grey zero line the pair conflicts."""
    measured = [s for s in steps if (s.get("diagnostics") or {}).get("cosine")]
    pairs = [f"{a}|{b}" for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    fig = go.Figure()
    for k, pair in enumerate(pairs):
        pts = [(s["step"], s["diagnostics"]["cosine"][pair]) for s in measured if pair in s["diagnostics"]["cosine"]]
        if not pts:
            continue
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=plotly_text(short_name(pair.replace("|", " · "))), line={"color": PALETTE[k % len(PALETTE)], "width": 2},
                                 marker={"size": 5}))
    fig.add_hline(y=0, line={"color": GREY, "width": 2})
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="cosine", range=[-1.05, 1.05])
    return apply_layout(fig, "Gradient cosine per step", uirevision, height=300,
                        subtitle="below the grey line at 0 the pair conflicts")


def affinity_figure(epochs: Sequence[Mapping[str, Any]], tasks: Sequence[str], steps: Sequence[Mapping[str, Any]] = (),
                    uirevision: Any = "run") -> go.Figure:
    """Lookahead affinity Z(i->j): row i is the task stepped on, column j the task whose loss changes."""
    latest = latest_epoch_diagnostics(epochs)
    values = latest.get("affinity") or _mean_over_steps(steps, "affinity")
    z = _matrix(values, tasks, "->", symmetric=False, diagonal=None)
    # Z = 1 - L_j(after) / L_j(before) is the share of j's loss that the step removes: shown as a percentage.
    return diverging_heatmap(z, tasks, "Task affinity Z(i→j)", "effect on task j", "a step on task i", fmt="+.1%",
                             hover="a step on %{y} changes %{x}'s loss: Z = %{z:.4f}", uirevision=uirevision,
                             subtitle="% of j's loss a step on i removes; blue: i helps j, red: it hurts")
