"""Loading a run's checkpoint safely, and writing a background run's only while its worker holds it.

A checkpoint is a dict of plain types and tensors (``TrainingRun.checkpoint``),
so it loads with ``weights_only=True``: unpickling arbitrary objects from a
file could run arbitrary code, and these files may come from anyone's run.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import StoreError, StoreUnwritable


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


def save_checkpoint_while_held(payload: dict[str, Any], path: Path, still_held: Callable[[], None]) -> None:
    """Write a run's checkpoint atomically, replacing the last one only if ``still_held()`` does not raise.

    A worker that woke up after its run was taken away (see errors.ClaimLost)
    must not overwrite the checkpoint of a run that the store says ended
    earlier: the new file is written beside the old one, the claim checked,
    and only then moved over it. A folder that cannot be written (read-only,
    full) raises StoreUnwritable, as one sentence.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        still_held()
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise StoreUnwritable(
            f"Could not write the checkpoint {path} ({error.strerror or error}): the data folder may have "
            "turned read-only or full, so the run stopped."
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
