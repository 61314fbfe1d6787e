"""Markers where a run was steered: a dashed vertical line with a short label at each change.

Live steering (mtlcore.runs.steering) changes a running run's loss weights,
learning rate or pause state at a known step; every curve of that run shows
where, so a bend in a loss curve can be read against the change that caused
it. The markers are plain data, built from the steering events (or from a
finished run's ``summary["steering"]``), then drawn on any figure:

    >>> marks = steering_markers(events)              # [Marker(step=120, label="shape ×3")]
    >>> add_markers(step_loss_figure(steps, tasks), marks)
    >>> add_markers(epoch_figure(...), marks, steps_per_epoch=40)   # the x axis counts epochs

Nothing here imports Streamlit or torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import plotly.graph_objects as go

from ..safe_text import plotly_text  # a task name is user text
from .style import FONT_SIZE

__all__ = ["Marker", "add_markers", "steering_markers"]

MARKER_COLOR = "#555555"
SHOWN_KEYS = ("loss.weights.", "optim.lr", "pause", "resume", "forked_from")


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``step`` (steps trained before the change) labelled ``label``."""

    step: float
    label: str


def steering_markers(events: Iterable[Any]) -> list[Marker]:
    """One marker per step at which a change took effect; changes at one step share one label.

    ``events``: SteeringEvents (their ``step``, ``key``, ``label``, ``note``) or
    the dicts of a summary's ``"steering"`` list. Refused requests and the
    system's ``packed`` note make no marker.
    """
    labels: dict[float, list[str]] = {}
    for event in events:
        step, key, note = _get(event, "step"), _get(event, "key"), _get(event, "note")
        if step is None or note or not any(str(key).startswith(k) for k in SHOWN_KEYS):
            continue
        labels.setdefault(float(step), []).append(_label(event))
    return [Marker(step, " · ".join(dict.fromkeys(parts))) for step, parts in sorted(labels.items())]


def add_markers(fig: go.Figure, markers: Iterable[Marker], steps_per_epoch: int | None = None,
                offset: float = 0.0) -> go.Figure:
    """Draw each marker on ``fig`` (every subplot): a dashed line and its label at the top.

    ``steps_per_epoch``: the figure's x axis counts epochs (a change after
    step s sits at epoch s / steps_per_epoch). ``offset``: added to every x
    (a fork's curves drawn from its parent's step on Compare).
    """
    for marker in markers:
        x = marker.step / steps_per_epoch if steps_per_epoch else marker.step
        fig.add_vline(x=x + offset, line={"color": MARKER_COLOR, "dash": "dash", "width": 1.5},
                      annotation={"text": plotly_text(marker.label), "font": {"size": FONT_SIZE - 4,
                                                                             "color": MARKER_COLOR},
                                  "textangle": -90, "xanchor": "right", "yanchor": "top"},
                      annotation_position="top left", row="all" if _has_grid(fig) else None,
                      col="all" if _has_grid(fig) else None)
    return fig


def _label(event: Any) -> str:
    label = getattr(event, "label", None)
    if isinstance(label, str):
        return label
    key, value, text = _get(event, "key"), _get(event, "value"), _get(event, "text")
    if key.startswith("loss.weights."):
        return f"{key[len('loss.weights.'):]} ×{value:g}"
    if key == "optim.lr":
        return f"lr {value:g}"
    return {"pause": "paused", "resume": "resumed", "forked_from": f"fork of {text}"}.get(key, key)


def _get(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else getattr(event, name, None)


def _has_grid(fig: go.Figure) -> bool:
    """Whether the figure has subplots (made by make_subplots), so that a line goes on each."""
    return getattr(fig, "_grid_ref", None) is not None
