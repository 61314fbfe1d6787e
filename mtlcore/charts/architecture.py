"""Architecture sketches: a left-to-right drawing of each sharing scheme for the run's tasks."""
from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from ..safe_text import plotly_text  # task names come from imported CSVs: shown as typed, never as tags
from .style import FONT_SIZE, TITLE_CHARS, TITLE_LINE_PX, TITLE_TOP_PX, task_colors, wrap

__all__ = ["architecture_figure"]

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
        # Smaller than the title and with room to the right: "background" stays whole in a 220 px column.
        sk.text(out_x, y, f"<b>{plotly_text(t)}</b>", colors[t], FONT_SIZE - 3, xanchor="left")

    fig = go.Figure(layout={"shapes": sk.shapes, "annotations": sk.notes})
    fig.update_xaxes(visible=False, range=[-0.1, 13.4], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.2, height_units + 0.35], fixedrange=True)
    # A title in lines that fit a 240 px column, placed from the top as style.apply_layout does.
    lines = wrap(title, TITLE_CHARS) if title else []
    top = TITLE_TOP_PX + TITLE_LINE_PX * len(lines) + 4 if lines else 10
    height = int(70 * height_units + 50 + top)
    fig.update_layout(
        title={"text": "<br>".join(lines), "font": {"size": FONT_SIZE + 1}, "x": 0, "xref": "container",
               "xanchor": "left", "pad": {"l": 5}, "y": 1 - TITLE_TOP_PX / height, "yref": "container",
               "yanchor": "top"},
        height=height,
        margin={"l": 5, "r": 5, "t": top, "b": 5},
        plot_bgcolor="white", paper_bgcolor="white", showlegend=False, font={"size": FONT_SIZE},
    )
    return fig
