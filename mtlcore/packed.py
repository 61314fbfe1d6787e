"""The old home of packed training, kept so that ``from mtlcore.packed import ...`` still works.

Packing now lives in the ``mtlcore.packing`` package, one job per file
(grouping, grouped layers, the stacked model, the loop); read it there.
"""
from __future__ import annotations

from .packing.grouped_layers import GroupedBatchNorm, GroupedLinear, can_group, grouped_model
from .packing.grouping import MAX_PACKED_RUNS, pack_groups, pack_key, packing_of
from .packing.loop import fit_many, fit_packed
from .packing.stacked import PackedRuns

__all__ = ["GroupedBatchNorm", "GroupedLinear", "MAX_PACKED_RUNS", "PackedRuns", "can_group", "fit_many",
           "fit_packed", "grouped_model", "pack_groups", "pack_key", "packing_of"]
