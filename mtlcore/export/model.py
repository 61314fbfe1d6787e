"""A trained run as a file that plain PyTorch loads, with no MTL Lab installed.

The format is ``torch.export`` (``torch.export.export`` + ``torch.export.save``):
on this project's PyTorch (2.14) ``torch.jit.trace``/``script`` are
deprecated, while ``torch.export`` round-trips every architecture (hard,
soft, cross_stitch, mmoe, single), with a dynamic batch size, checked by
``tests/test_export.py``. The model is exported in eval mode (BatchNorm uses
its running averages, dropout is off), in float32, on the CPU.

    import torch
    model = torch.export.load("model.pt2").module()
    outputs = model(x)         # x: N x C x H x W (or N x D), preprocessed as model.json says
    outputs["shape"]           # N x classes logits; softmax(logits / temperature) for probabilities

Beside it, ``model.json`` (``model_metadata``) says what goes in and what
comes out: the tasks in order, their kinds and classes, each regression
task's mean and std (outputs are standardised: value = output * std + mean),
each classification task's fitted temperature, and the preprocessing.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import dataset_info
from ..losses import make_loss
from ..predict import LoadedModel

__all__ = ["FORMAT", "export_bytes", "export_model", "model_metadata"]

FORMAT = "mtl-lab-export/1"
MAX_BATCH = 1 << 20


class TaskOutputs(nn.Module):
    """The lab's model with a plain signature: ``forward(x) -> {task: output}`` in task order."""

    def __init__(self, model: nn.Module, tasks: list[str]):
        super().__init__()
        self.model, self.tasks = model, list(tasks)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.model(x)
        return {t: outputs[t].float() for t in self.tasks}


def exported_program(loaded: LoadedModel) -> torch.export.ExportedProgram:
    """``torch.export`` of the loaded model (eval mode, CPU, float32), any batch size from 1 up."""
    model = TaskOutputs(loaded.model, list(loaded.tasks)).cpu().float().eval()
    example = torch.zeros(2, *loaded.input_shape)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))


def export_bytes(loaded: LoadedModel) -> bytes:
    """The exported model file's bytes (what the Predict page offers for download)."""
    buffer = io.BytesIO()
    torch.export.save(exported_program(loaded), buffer)
    return buffer.getvalue()


def export_model(loaded: LoadedModel, path: Path | str) -> tuple[Path, Path]:
    """Write ``path`` (the model) and ``path`` with ``.json`` (its metadata); return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_bytes(loaded))
    meta = path.with_suffix(".json")
    meta.write_text(json.dumps(model_metadata(loaded, path.name), indent=2) + "\n")
    return path, meta


def preprocessing(loaded: LoadedModel) -> dict[str, Any]:
    """What an input must look like: its shape and how the dataset made it."""
    info = dataset_info(loaded.config.dataset.name)
    shape = list(loaded.input_shape)
    out: dict[str, Any] = {"input_kind": info.input_kind, "input_shape": shape, "dtype": "float32",
                           "batch": f"N x {' x '.join(str(s) for s in shape)} (any N from 1)"}
    if info.input_kind == "image":
        # Every image dataset of the lab scales pixels to [0, 1] and then to [-1, 1] (see mtlcore/data/*.py).
        out["normalisation"] = {"scale": "pixel / 255 (digits: ink level / 16) to [0, 1]", "mean": 0.5, "std": 0.5,
                                "formula": "(x - 0.5) / 0.5, so inputs lie in [-1, 1]"}
        out["channels"] = "RGB" if shape[0] == 3 else "grey" if shape[0] == 1 else f"{shape[0]} channels"
        doc = (getattr(info.preprocess, "__doc__", None) or "").strip()
        if doc:
            out["how"] = " ".join(doc.split())
        if info.image_hint:
            out["expects"] = info.image_hint
    else:
        out["normalisation"] = {"formula": "the dataset's own feature vector, as the lab builds it"}
    out["dataset"] = {"name": loaded.config.dataset.name, "options": dict(loaded.config.dataset.options)}
    return out


def model_metadata(loaded: LoadedModel, file_name: str = "model.pt2") -> dict[str, Any]:
    """The JSON beside an exported model: tasks (in output order), classes, un-standardising, preprocessing."""
    tasks = []
    for name, spec in loaded.tasks.items():
        entry: dict[str, Any] = {"name": name, "kind": spec.kind}
        if spec.kind == "classification":
            entry.update(classes=list(spec.classes) or [str(i) for i in range(spec.num_classes)],
                         output="logits, N x classes", temperature=loaded.temperatures.get(name, 1.0))
        elif spec.kind != "regression":  # the reconstruction of the input (an autoencoder's output)
            entry.update(output=f"N x {' x '.join(str(v) for v in loaded.input_shape)} flattened: the input "
                                "rebuilt, normalised as the input")
        else:
            mean, std = loaded.target_stats.get(name, (0.0, 1.0))
            loss = make_loss(spec, loaded.config.loss)
            entry.update(unit=spec.unit, mean=mean, std=std,
                         output=("N x 2: standardised mean, log-variance; value = out[:, 0] * std + mean, "
                                 "sd = exp(out[:, 1] / 2) * std" if loss.predicts_variance else
                                 "N x 1, standardised; value = out[:, 0] * std + mean"))
        tasks.append(entry)
    return {
        "format": FORMAT,
        "file": file_name,
        "load": f"model = torch.export.load({file_name!r}).module(); outputs = model(x)  # a dict, task -> tensor",
        "torch": torch.__version__,
        "architecture": loaded.config.model.arch,
        "epoch": loaded.epoch,
        "tasks": tasks,
        "input": preprocessing(loaded),
        "config": loaded.config.to_dict(),
    }
