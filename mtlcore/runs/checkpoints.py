"""The run store's side of checkpoints: the format's errors as the store's, and fenced writes.

The format itself (what a checkpoint holds, atomic writes, ``weights_only=True``
reads) is owned by ``mtlcore.checkpoint``; this module only speaks the
store's language: a missing or damaged file is a ``StoreError``, a folder
that cannot be written a ``StoreUnwritable``, and a background run's
checkpoint replaces the last one only while its worker still holds the run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint import CheckpointError, save_checkpoint, write_checkpoint_bytes
from ..checkpoint import load_checkpoint as read_checkpoint  # this module's load_checkpoint speaks StoreError
from .errors import StoreError, StoreUnwritable


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, its tensors on ``device``; a missing or damaged file raises StoreError."""
    try:
        return read_checkpoint(path, device)
    except CheckpointError as error:
        raise StoreError(str(error)) from None


def _fenced_write(write: Callable[[], None], path: Path) -> None:
    try:
        write()
    except OSError as error:
        raise StoreUnwritable(
            f"Could not write the checkpoint {path} ({error.strerror or error}): the data folder may have "
            "turned read-only or full, so the run stopped."
        ) from None


def save_checkpoint_while_held(payload: Any, path: Path, still_held: Callable[[], None]) -> None:
    """Write a run's checkpoint (a TrainingRun or its payload) atomically, replacing the last one only if
    ``still_held()`` does not raise.

    A worker that woke up after its run was taken away (see errors.ClaimLost)
    must not overwrite the checkpoint of a run that the store says ended
    earlier: the new file is written beside the old one, the claim checked,
    and only then moved over it. A folder that cannot be written (read-only,
    full) raises StoreUnwritable, as one sentence.
    """
    _fenced_write(lambda: save_checkpoint(path, payload, before_replace=still_held), path)


def write_checkpoint_bytes_while_held(data: bytes, path: Path, still_held: Callable[[], None]) -> None:
    """``save_checkpoint_while_held`` for a checkpoint that arrives as bytes (from a Ray task)."""
    _fenced_write(lambda: write_checkpoint_bytes(path, data, before_replace=still_held), path)
