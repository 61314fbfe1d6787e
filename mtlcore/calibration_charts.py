"""Moved: the calibration figures live in ``mtlcore.charts.calibration`` (one presentation layer).

This name stays so that older imports keep working.
"""
from __future__ import annotations

from .charts.calibration import has_calibration, reliability_figure, temperature_figure, temperature_grid

__all__ = ["has_calibration", "reliability_figure", "temperature_figure", "temperature_grid"]
