"""The checkpoint format, owned here: what a run's checkpoint holds, how it is written and how it is read.

Every writer (``python -m mtlcore train``'s run files, a background worker,
a Ray task) and every reader (Predict, export, ``mtlcore.runs.load_checkpoint``)
goes through these functions:

    checkpoint_payload(run)             the dict of a TrainingRun (plain types + tensors)
    save_checkpoint(path, run)          atomic write: a reader never sees half a file
    checkpoint_bytes(run)               the same bytes, for a run that cannot write the file itself (Ray)
    write_checkpoint_bytes(path, data)  those bytes into the file, atomically
    load_checkpoint(path)               weights_only=True; older formats filled in
    restore_training_state(run, ckpt)   a new run continues from a checkpoint (weights + weighting state)

A checkpoint is a dict of plain types and tensors, so it loads with
``torch.load(..., weights_only=True)``: unpickling arbitrary objects could run
arbitrary code, and these files may come from anyone's run.

Format 1 (this one)::

    format        1
    config        ExperimentConfig.to_dict()
    model         the model's state_dict, on the CPU, contiguous
    weighting     the weighting method's state_dict (e.g. uncertainty's log-variances, DWA's loss history)
    tasks         {task: TaskSpec.as_dict()}
    target_stats  {task: [mean, std]} of regression targets
    input_kind    "image" or "vector";  input_shape: [C, H, W] or [D]
    epoch         the epoch whose weights these are (the best one when early stopping kept it)
    step          optimiser steps taken
    temperatures  {task: T} fitted on the validation split (Guo et al., ICML 2017)

Files written before ``format`` existed (format 0) lack ``format``, ``step``,
``temperatures`` and maybe ``weighting``; ``load_checkpoint`` fills these in,
so older runs keep predicting.

Nothing here imports the run store (the store imports this module): errors
are ``CheckpointError``, one sentence each, which the store re-raises as its
own ``StoreError``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

__all__ = [
    "FORMAT",
    "CheckpointError",
    "checkpoint_bytes",
    "checkpoint_payload",
    "load_checkpoint",
    "restore_training_state",
    "save_checkpoint",
    "write_checkpoint_bytes",
]

FORMAT = 1
TEMP_SUFFIX = ".tmp"  # an atomic write writes PATH.tmp first, then renames it over PATH

# What a format-0 file may lack, and what it means when it does.
_DEFAULTS: dict[str, Any] = {"format": 0, "weighting": {}, "epoch": 0, "step": 0, "temperatures": {}}


class CheckpointError(Exception):
    """A checkpoint is missing, damaged or not an MTL Lab checkpoint (one sentence for a person)."""


def checkpoint_payload(run: Any) -> dict[str, Any]:
    """Everything needed to rebuild ``run``'s model for prediction, and to continue training it.

    ``run`` is a ``mtlcore.engine.TrainingRun`` (or anything with the same
    attributes: a packed member's run).
    """
    return {
        "format": FORMAT,
        "config": run.config.to_dict(),
        # contiguous: a plain (N, C, H, W) copy whatever the training layout (channels_last)
        "model": {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()},
        "weighting": run.weighting.state_dict(),
        "tasks": {t: spec.as_dict() for t, spec in run.specs.items()},
        "target_stats": {t: list(v) for t, v in run.target_stats.items()},
        "input_kind": run.input_kind,
        "input_shape": list(run.input_shape),
        "epoch": run.kept_epoch or run.epoch,
        "step": run.step,
        "temperatures": dict(run.temperatures),
    }


def _payload(checkpoint: Any) -> Mapping[str, Any]:
    """A payload as given, or the payload of a run."""
    return checkpoint if isinstance(checkpoint, Mapping) else checkpoint_payload(checkpoint)


def checkpoint_bytes(checkpoint: Any) -> bytes:
    """The bytes of the checkpoint file of ``checkpoint`` (a run or a payload)."""
    buffer = io.BytesIO()
    torch.save(dict(_payload(checkpoint)), buffer)
    return buffer.getvalue()


def write_checkpoint_bytes(path: Path | str, data: bytes,
                           before_replace: Callable[[], None] | None = None) -> None:
    """Write ``data`` to ``path`` atomically: beside it first, then renamed over it.

    ``before_replace`` runs between the two and may raise to keep the old
    file (a background worker checks that it still holds the run: see
    ``mtlcore.runs.errors.ClaimLost``). The half-written file never stays.
    OSError (read-only or full folder) propagates.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path | str, checkpoint: Any, before_replace: Callable[[], None] | None = None) -> None:
    """Write the checkpoint of ``checkpoint`` (a TrainingRun or its payload) to ``path``, atomically."""
    write_checkpoint_bytes(path, checkpoint_bytes(checkpoint), before_replace)


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, its tensors on ``device``, with every key of the current format.

    Raises CheckpointError for a missing, damaged or foreign file.
    """
    path = Path(path)
    run = path.parent.name
    if not path.is_file():
        raise CheckpointError(f"No checkpoint yet for run {run}: it is written at the end of each epoch.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # torch raises many kinds for a damaged or foreign file
        raise CheckpointError(f"The checkpoint of run {run} ({path}) cannot be read: it is damaged, incomplete "
                              "or not an MTL Lab checkpoint.") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"The file {path} is not an MTL Lab checkpoint (it has no model weights).")
    if int(payload.get("format", 0)) > FORMAT:
        raise CheckpointError(f"The checkpoint {path} has format {payload['format']}, newer than this MTL Lab "
                              f"reads (format {FORMAT}): update MTL Lab to use it.")
    for key, default in _DEFAULTS.items():
        payload.setdefault(key, type(default)() if isinstance(default, dict) else default)
    payload["temperatures"] = payload["temperatures"] or {}  # None in some format-0 files
    return payload


def restore_training_state(run: Any, checkpoint: Mapping[str, Any]) -> bool:
    """Continue ``run`` from ``checkpoint``: the model's weights, and the weighting method's state when it can.

    The weighting state (uncertainty's log-variances, GradNorm's weights,
    FAMO's logits, DWA's loss history) only means something to the same
    method on the same tasks; a run with another method or other tasks starts
    its weighting afresh, as a new run would. Returns whether the weighting
    state was restored.
    """
    run.model.load_state_dict(checkpoint["model"])
    saved = checkpoint.get("config") or {}
    same_method = ((saved.get("weighting") or {}).get("method") == run.config.weighting.method
                   and list(saved.get("tasks") or ()) == list(run.config.tasks))
    state = checkpoint.get("weighting") or {}
    if not (same_method and state):
        return False
    run.weighting.load_state_dict(state)
    return True
