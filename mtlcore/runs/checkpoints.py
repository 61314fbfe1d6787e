"""Loading a run's checkpoint safely (writing is ``mtlcore.callbacks.save_checkpoint``).

A checkpoint is a dict of plain types and tensors (``TrainingRun.checkpoint``),
so it loads with ``weights_only=True``: unpickling arbitrary objects from a
file could run arbitrary code, and these files may come from anyone's run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import StoreError


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, its tensors on ``device``; a missing or damaged file raises StoreError."""
    path = Path(path)
    run = path.parent.name
    if not path.is_file():
        raise StoreError(f"No checkpoint yet for run {run}: it is written at the end of each epoch.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # torch raises many kinds for a damaged or foreign file
        raise StoreError(f"The checkpoint of run {run} ({path}) cannot be read: it is damaged, incomplete "
                         "or not an MTL Lab checkpoint.") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise StoreError(f"The file {path} is not an MTL Lab checkpoint (it has no model weights).")
    return payload
