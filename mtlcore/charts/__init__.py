"""Plotly figures of runs, studies, predictions and the architectures, as pure functions.

Every builder takes plain data (the step and epoch logs that the run store
returns, task names, a summary) and returns a ``plotly.graph_objects.Figure``;
nothing here imports Streamlit or torch, so the figures are testable alone:

    >>> fig = step_loss_figure(store.step_metrics(run_id), ["shape", "color"])

One module per family of figures, all drawn with one look (``style``):

    style          palette (Okabe & Ito), fonts, margins, the legend below the plot,
                   thinning, smoothing, a log axis for values that span > 1000x
    training       loss per step, one task per epoch, task weights over time
    diagnostics    gradient cosine and affinity heatmaps, cosine per step
    architecture   the sketch of each sharing scheme
    calibration    reliability diagram, probabilities against temperature
    markers        dashed lines where a run was steered live (weights, lr, pause, fork)
    comparison     one task's curves of several runs (the Compare page)
    prediction     a classification task's probabilities as bars (Predict)
    studies        a study's result (bars, transfer and affinity matrices, trade-off, relatedness)

Pages call ``charts.<figure>(data)`` and hand the result to ``st.plotly_chart``.
"""
from __future__ import annotations

from .architecture import architecture_figure
from .calibration import has_calibration, reliability_figure, temperature_figure
from .comparison import Curve, curves_figure
from .markers import Marker, add_markers, steering_markers
from .diagnostics import (
    affinity_figure,
    cosine_figure,
    cosine_lines_figure,
    diverging_heatmap,
    has_diagnostics,
    latest_epoch_diagnostics,
)
from .prediction import probability_figure
from .studies import figures as study_figures
from .style import (
    DIVERGING,
    FONT_SIZE,
    LEGEND_BELOW,
    LOG_SCALE_SPREAD,
    MAX_POINTS,
    PALETTE,
    apply_layout,
    log_axis_if_spread,
    series_colors,
    smooth,
    task_colors,
    thin,
)
from .training import epoch_figure, step_loss_figure, weights_figure, weights_vary

__all__ = [
    "Curve",
    "DIVERGING",
    "Marker",
    "FONT_SIZE",
    "LEGEND_BELOW",
    "LOG_SCALE_SPREAD",
    "MAX_POINTS",
    "PALETTE",
    "add_markers",
    "affinity_figure",
    "apply_layout",
    "architecture_figure",
    "cosine_figure",
    "cosine_lines_figure",
    "curves_figure",
    "diverging_heatmap",
    "epoch_figure",
    "has_calibration",
    "has_diagnostics",
    "latest_epoch_diagnostics",
    "log_axis_if_spread",
    "probability_figure",
    "reliability_figure",
    "series_colors",
    "smooth",
    "steering_markers",
    "step_loss_figure",
    "study_figures",
    "task_colors",
    "temperature_figure",
    "thin",
    "weights_figure",
    "weights_vary",
]
