"""Plotly figures of runs, studies, predictions and the architectures, as pure functions.

Every builder takes plain data (the step and epoch logs that the run store
returns, task names, a summary) and returns a ``plotly.graph_objects.Figure``;
nothing here imports Streamlit or torch, so the figures are testable alone:

    >>> fig = step_loss_figure(store.step_metrics(run_id), ["shape", "color"])

One module per family of figures, all drawn with one look (``style``):

    style          palette, fonts, margins, legend placement, thinning, smoothing
    training       loss per step, one task per epoch, task weights over time
    diagnostics    gradient cosine and affinity heatmaps, cosine per step
    architecture   the sketch of each sharing scheme

Pages call ``charts.<figure>(data)`` and hand the result to ``st.plotly_chart``.
"""
from __future__ import annotations

from .architecture import architecture_figure
from .diagnostics import (
    affinity_figure,
    cosine_figure,
    cosine_lines_figure,
    diverging_heatmap,
    has_diagnostics,
    latest_epoch_diagnostics,
)
from .style import (
    DIVERGING,
    FONT_SIZE,
    LEGEND_BELOW,
    LOG_SCALE_SPREAD,
    MAX_POINTS,
    PALETTE,
    apply_layout,
    smooth,
    task_colors,
    thin,
)
from .training import epoch_figure, step_loss_figure, weights_figure, weights_vary

__all__ = [
    "DIVERGING",
    "FONT_SIZE",
    "LEGEND_BELOW",
    "LOG_SCALE_SPREAD",
    "MAX_POINTS",
    "PALETTE",
    "affinity_figure",
    "apply_layout",
    "architecture_figure",
    "cosine_figure",
    "cosine_lines_figure",
    "diverging_heatmap",
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
