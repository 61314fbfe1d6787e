"""Plotly figures of a run's metrics and of the architectures, as pure functions.

Every function takes plain data (the step and epoch logs that the run store
returns, task names, a summary) and returns a ``plotly.graph_objects.Figure``;
nothing here imports Streamlit or torch, so the figures are testable alone:

    >>> fig = step_loss_figure(store.step_metrics(run_id), ["shape", "color"])

Figures are made for a classroom projector: large fonts, a colour-blind-safe
palette (Okabe & Ito) with one fixed colour per task, and ``uirevision`` in
the layout, so that a chart redrawn every second with new points keeps the
zoom a person chose.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .safe_text import plotly_text  # task names come from imported CSVs: shown as typed, never as tags

__all__ = [
    "PALETTE",
    "affinity_figure",
    "architecture_figure",
    "cosine_figure",
    "cosine_lines_figure",
    "epoch_figure",
    "has_diagnostics",
    "latest_epoch_diagnostics",
    "smooth",
    "step_loss_figure",
    "task_colors",
    "thin",
    "weights_figure",
    "weights_vary",
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


def _layout(fig: go.Figure, title: str, uirevision: Any, height: int = 340, hovermode: str = "x unified",
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


# ----- training curves ----------------------------------------------------------------

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
                                 line={"color": colors[t], "width": 1}, opacity=0.3, name=f"{plotly_text(t)} (raw)",
                                 legendgroup=t, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=[v for i, v in enumerate(smoothed) if i in keep], mode="lines",
                                 line={"color": colors[t], "width": 3}, name=plotly_text(t), legendgroup=t))
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="training loss", rangemode="tozero")
    return _layout(fig, "Training loss per step", uirevision)


def epoch_figure(epochs: Sequence[Mapping[str, Any]], task: str, metric: str, color: str = PALETTE[0],
                 chance: float | None = None, unit: str = "", uirevision: Any = "run") -> go.Figure:
    """One task per epoch: loss (left) and its metric (right), training dashed, validation solid.

    ``chance``: the accuracy of guessing, drawn as a grey line (classification).
    """
    label = {"accuracy": "accuracy", "mse": "MSE per pixel",
             "mae": f"mean abs. error{f' ({plotly_text(unit)})' if unit else ''}"}.get(
        metric, plotly_text(metric))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", label), horizontal_spacing=0.14)
    x = [e["epoch"] for e in epochs]
    for col, key in ((1, "loss"), (2, metric)):
        for split, dash, width in (("train", "dash", 2), ("val", "solid", 3)):
            y = [e.get(split, {}).get(task, {}).get(key) for e in epochs]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{split}",
                                     line={"color": color, "dash": dash, "width": width},
                                     marker={"size": 7}, showlegend=(col == 1),
                                     legendgroup=split), row=1, col=col)
    if chance is not None and metric == "accuracy":
        fig.add_hline(y=chance, line={"color": "#777777", "dash": "dot", "width": 2}, row=1, col=2,
                      annotation_text="chance", annotation_position="bottom right")
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    else:
        fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(x) <= 15 else None)
    fig.update_annotations(font={"size": FONT_SIZE})  # the subplot titles
    return _layout(fig, f"{plotly_text(task)} per epoch — dashed: training, solid: validation", uirevision, height=330,
                   showlegend=False, margin={"l": 60, "r": 20, "t": 80, "b": 50})


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
                                 line={"color": colors[t], "width": 3}, name=plotly_text(t)))
    fig.update_xaxes(title_text="training step")
    title = "Task weights over time"
    positive = [w for s in points for w in (s.get("weight") or {}).values()
                if isinstance(w, (int, float)) and math.isfinite(w) and w > 0]
    if positive and max(positive) / min(positive) > LOG_SCALE_SPREAD:
        # A vanishing gradient can give one weight 1e10 (PCGrad's effective weights, Yu et al. 2020, per step
        # against the loss): on a linear axis every other line is flat at 0. Log scale keeps them all readable.
        fig.update_yaxes(title_text="weight (log scale)", type="log")
        title += f"<br><sup>log scale: the weights span {min(positive):.2g} to {max(positive):.2g}</sup>"
    else:
        fig.update_yaxes(title_text="weight", rangemode="tozero")
    return _layout(fig, title, uirevision, height=300)


# ----- gradient diagnostics --------------------------------------------------------------

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
                      extra_text: list[list[str]] | None = None) -> go.Figure:
    """A task x task matrix coloured around 0 (blue above, red below), each cell labelled.

    ``zmax`` None scales the colours to the largest |value|; a missing ``z``
    draws an empty grid. Used for gradient cosines, affinities and transfer.
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
        text=text, texttemplate="%{text}", textfont={"size": FONT_SIZE if len(tasks) <= 3 else FONT_SIZE - 3},
        hovertemplate=hover + "<extra></extra>",
        colorbar={"thickness": 14},
    ))
    fig.update_xaxes(title_text=x_title, side="bottom")
    fig.update_yaxes(title_text=y_title, autorange="reversed")
    n = len(tasks)
    return _layout(fig, title, uirevision, height=max(300, 90 * n + 140), hovermode="closest")


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
    title = f"Gradient cosine ({where})" + ("<br><sup>small %: share of steps in conflict</sup>" if conflict else "")
    return diverging_heatmap(z, tasks, title, "task", "task", fmt=".2f",
                             hover="cos(%{y}, %{x}) = %{z:.2f}", zmax=1.0, uirevision=uirevision, extra_text=extra)


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
                                 name=plotly_text(pair.replace("|", " · ")), line={"color": PALETTE[k % len(PALETTE)], "width": 2},
                                 marker={"size": 5}))
    fig.add_hline(y=0, line={"color": "#777777", "width": 2})
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="cosine", range=[-1.05, 1.05])
    return _layout(fig, "Gradient cosine per step (below 0: the pair conflicts)", uirevision, height=300)


def affinity_figure(epochs: Sequence[Mapping[str, Any]], tasks: Sequence[str], steps: Sequence[Mapping[str, Any]] = (),
                    uirevision: Any = "run") -> go.Figure:
    """Lookahead affinity Z(i->j): row i is the task stepped on, column j the task whose loss changes."""
    latest = latest_epoch_diagnostics(epochs)
    values = latest.get("affinity") or _mean_over_steps(steps, "affinity")
    z = _matrix(values, tasks, "->", symmetric=False, diagonal=None)
    return diverging_heatmap(z, tasks, "Task affinity Z(i→j)", "effect on task j", "a step on task i", fmt=".3f",
                             hover="a step on %{y} changes %{x}'s loss: Z = %{z:.4f}", uirevision=uirevision)


# ----- architecture diagrams -------------------------------------------------------------

_BOX = {"shared": "#D6E4F0", "task": "#FFFFFF", "input": "#EEEEEE", "unit": "#FCE8C8", "gate": "#E5F2E5"}


class _Sketch:
    """Shapes and annotations collected in lists and added to the figure at once (much faster than one by one)."""

    def __init__(self) -> None:
        self.shapes: list[dict] = []
        self.notes: list[dict] = []

    def box(self, x0: float, y0: float, x1: float, y1: float, text: str, fill: str, line: str = "#444444") -> None:
        self.shapes.append({"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "fillcolor": fill,
                            "line": {"color": line, "width": 2}, "layer": "below"})
        self.notes.append({"x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "text": text, "showarrow": False,
                           "font": {"size": FONT_SIZE - 3, "color": "#111111"}})

    def arrow(self, x0: float, y0: float, x1: float, y1: float, color: str = "#555555", width: float = 1.6) -> None:
        self.notes.append({"x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y", "axref": "x",
                           "ayref": "y", "text": "", "showarrow": True, "arrowhead": 2, "arrowsize": 1,
                           "arrowwidth": width, "arrowcolor": color})

    def line(self, x0: float, y0: float, x1: float, y1: float, color: str, width: float = 1, dash: str = "solid") -> None:
        self.shapes.append({"type": "line", "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                            "line": {"color": color, "width": width, "dash": dash}})

    def text(self, x: float, y: float, text: str, color: str, size: int = FONT_SIZE, **extra: Any) -> None:
        self.notes.append({"x": x, "y": y, "text": text, "showarrow": False, "font": {"size": size, "color": color},
                           **extra})


def _rows(n: int) -> list[float]:
    """Centre heights of n rows, top to bottom, one unit apart."""
    return [n - 1 - i + 0.5 for i in range(n)]


def architecture_figure(arch: str, tasks: Sequence[str], num_experts: int = 4, title: str | None = None) -> go.Figure:
    """A left-to-right sketch of ``arch`` (hard, soft, cross_stitch, mmoe, single) for ``tasks``.

    Shared parts are blue, task-specific parts white, cross-stitch units orange,
    gates green. An unknown name draws hard sharing's picture with a note.
    """
    tasks = list(tasks) or ["task"]
    if arch == "single":
        tasks = tasks[:1]
    colors = task_colors(tasks)
    n = len(tasks)
    experts = max(1, min(int(num_experts), 8)) if arch == "mmoe" else 0
    height_units = max(n, experts, 1)
    ys = _rows(n)
    ys = [y + (height_units - n) / 2 for y in ys]
    mid = height_units / 2
    sk = _Sketch()
    h = 0.34  # half height of a task's box

    sk.box(0.0, mid - 0.45, 1.4, mid + 0.45, "input", _BOX["input"])
    head_x0, head_x1, out_x = 7.0, 8.4, 8.7
    if arch in ("hard", "single") or arch not in ("soft", "cross_stitch", "mmoe"):
        label = "trunk" if arch == "single" else "shared trunk"
        sk.box(2.2, min(ys) - h, 5.4, max(ys) + h, label, _BOX["shared"])
        sk.arrow(1.4, mid, 2.2, mid)
        for y in ys:
            sk.arrow(5.4, y, head_x0, y)
    elif arch == "soft":
        for i, (t, y) in enumerate(zip(tasks, ys)):
            sk.box(2.2, y - h, 5.4, y + h, "trunk", _BOX["task"], line=colors[t])
            sk.arrow(1.4, mid, 2.2, y)
            sk.arrow(5.4, y, head_x0, y)
            if i > 0:  # the penalty that ties neighbouring columns
                sk.line(3.8, ys[i - 1] - h, 3.8, y + h, "#B2182B", width=3, dash="dot")
        if n > 1:
            sk.text(5.5, (ys[0] + ys[1]) / 2, "λ‖θᵢ − θⱼ‖²", "#B2182B", FONT_SIZE - 2, xanchor="left",
                    bgcolor="rgba(255,255,255,0.85)")
    elif arch == "cross_stitch":
        for t, y in zip(tasks, ys):
            sk.box(2.0, y - h, 3.5, y + h, "layer 1", _BOX["task"], line=colors[t])
            sk.box(5.0, y - h, 6.5, y + h, "layer 2", _BOX["task"], line=colors[t])
            sk.arrow(1.4, mid, 2.0, y)
            sk.arrow(6.5, y, head_x0, y)
            sk.arrow(3.5, y, 3.9, y)
            sk.arrow(4.6, y, 5.0, y)
        sk.box(3.9, min(ys) - h, 4.6, max(ys) + h, "α", _BOX["unit"], line="#E69F00")
        sk.text(4.25, max(ys) + h + 0.05, "cross-stitch units", "#9A6700", FONT_SIZE - 3, yanchor="bottom")
    else:  # mmoe
        eys = [y + (height_units - experts) / 2 for y in _rows(experts)]
        eh = min(h, 0.38)
        for k, y in enumerate(eys):
            sk.box(2.2, y - eh, 3.8, y + eh, f"expert {k + 1}", _BOX["shared"])
            sk.arrow(1.4, mid, 2.2, y, width=1.0)
        for t, y in zip(tasks, ys):
            sk.box(5.2, y - h, 6.4, y + h, "gate", _BOX["gate"], line=colors[t])
            for ey in eys:
                sk.line(3.8, ey, 5.2, y, "#BBBBBB")
            sk.arrow(6.4, y, head_x0, y)
    for t, y in zip(tasks, ys):
        sk.box(head_x0, y - h, head_x1, y + h, "head", _BOX["task"], line=colors[t])
        sk.text(out_x, y, f"<b>{plotly_text(t)}</b>", colors[t], xanchor="left")

    fig = go.Figure(layout={"shapes": sk.shapes, "annotations": sk.notes})
    fig.update_xaxes(visible=False, range=[-0.1, 11.2], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.2, height_units + 0.35], fixedrange=True)
    fig.update_layout(
        title={"text": title or "", "font": {"size": FONT_SIZE + 1}},
        height=int(70 * height_units + (110 if title else 60)),
        margin={"l": 5, "r": 5, "t": 50 if title else 10, "b": 5},
        plot_bgcolor="white", paper_bgcolor="white", showlegend=False, font={"size": FONT_SIZE},
    )
    return fig
