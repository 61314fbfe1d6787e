"""Moved: the figures of a study's result live in ``mtlcore.charts.studies`` (one presentation layer).

This name stays so that older imports keep working.
"""
from __future__ import annotations

from ..charts.studies import (  # noqa: F401  _layout: the tests check its legend placement
    _layout,
    affinity_figure,
    ensemble_figure,
    figures,
    relatedness_figure,
    stl_vs_mtl_figure,
    sweep_figure,
    transfer_figure,
)

__all__ = ["affinity_figure", "ensemble_figure", "figures", "relatedness_figure", "stl_vs_mtl_figure",
           "sweep_figure", "transfer_figure"]
