"""Per-task predictions of a trained model on a user's image.

The checkpoint holds the config, the weights and the tasks; the model is
rebuilt from them and the image goes through the *same* preprocessing as the
dataset (``DatasetInfo.preprocess``), so that what the model sees at
prediction time looks like what it saw in training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ExperimentConfig
from .data import TaskSpec, dataset_info, resolve_options
from .images import MAX_SIDE, read_image
from .losses import make_loss
from .models import MultiTaskModel, build_model
from .runs.checkpoints import load_checkpoint  # mtlcore.checkpoint's reader, speaking the store's StoreError
from .runs.errors import StoreError


# A missing or damaged checkpoint: one sentence (the run store's error).
CheckpointError = StoreError


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, ready to predict."""

    model: MultiTaskModel
    config: ExperimentConfig
    tasks: dict[str, TaskSpec]
    target_stats: dict[str, tuple[float, float]]
    epoch: int
    # Softmax temperatures fitted on the validation split (mtlcore.calibration); 1 where none was fitted.
    temperatures: dict[str, float] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()


def load_model(path: Path | str, device: str = "cpu") -> LoadedModel:
    """Rebuild the trained model stored in the checkpoint at ``path``."""
    payload = load_checkpoint(path, device)
    config = ExperimentConfig.from_dict(payload["config"])
    tasks = {
        name: TaskSpec(name=d["name"], kind=d["kind"], num_classes=d["num_classes"],
                       classes=tuple(d["classes"]), unit=d["unit"], description=d["description"],
                       shape=tuple(d.get("shape") or ()))
        for name, d in payload["tasks"].items()
    }
    model = build_model(config, list(tasks.values()), payload["input_kind"], tuple(payload["input_shape"]))
    model.load_state_dict(payload["model"])
    model.to(device).eval()
    stats = {t: (float(v[0]), float(v[1])) for t, v in payload["target_stats"].items()}
    temperatures = {t: float(v) for t, v in payload["temperatures"].items()}  # {} in files older than calibration
    return LoadedModel(model, config, tasks, stats, int(payload["epoch"]), temperatures,
                       tuple(payload["input_shape"]))


def preprocess(image_source: Any, dataset: str, options: dict[str, Any] | None = None) -> torch.Tensor:
    """A user's image (bytes, path or file) as one input of ``dataset``.

    ``options`` are the run's dataset options (e.g. ``image_size``), so the
    picture is shaped exactly like the inputs that run was trained on. The
    picture is shrunk to at most ``MAX_SIDE`` pixels in PIL first, before the
    dataset pads or converts it to floats, so memory stays small for any
    accepted file (see ``mtlcore.images``).
    """
    info = dataset_info(dataset)
    if info.preprocess is None:
        raise ValueError(f"Dataset {dataset!r} has no images; its inputs are vectors.")
    return info.preprocess(read_image(image_source, max_side=MAX_SIDE), **resolve_options(dataset, options))


@torch.no_grad()
def predict_tensor(loaded: LoadedModel, x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Each task's prediction for one preprocessed input ``x``.

    Classification: probabilities at the run's fitted temperature (1 when
    none was fitted), with the raw ``logits`` and the ``temperature`` so a
    page can show other temperatures (``calibration.softmax``). Regression:
    the value in original units, and its ``std`` when the loss predicts a
    variance (gaussian_nll). Reconstruction: the rebuilt ``image`` and the
    ``input`` (C x H x W nested lists, normalised as the model sees them)
    and their ``mse``.
    """
    device = next(loaded.model.parameters()).device
    outputs = loaded.model(x.unsqueeze(0).to(device))
    result: dict[str, dict[str, Any]] = {}
    for task, spec in loaded.tasks.items():
        out = outputs[task][0].float().cpu()
        if spec.kind == "classification":
            temperature = loaded.temperatures.get(task, 1.0)
            probs = torch.softmax(out / temperature, dim=-1)
            names = list(spec.classes) or [str(i) for i in range(spec.num_classes)]
            best = int(probs.argmax())
            result[task] = {
                "kind": "classification",
                "class": names[best],
                "probability": float(probs[best]),
                "probabilities": {n: float(p) for n, p in zip(names, probs)},
                "logits": [float(v) for v in out],
                "temperature": temperature,
            }
        elif spec.kind == "reconstruction":
            # The rebuilt input (normalised, as the model saw it) beside the input itself, for display.
            rebuilt = make_loss(spec, loaded.config.loss).point(out)
            result[task] = {"kind": "reconstruction", "image": rebuilt.tolist(), "input": x.float().cpu().tolist(),
                            "mse": float((rebuilt - x.float().cpu()).pow(2).mean())}
        else:
            mean, std = loaded.target_stats.get(task, (0.0, 1.0))
            loss = make_loss(spec, loaded.config.loss)
            result[task] = {"kind": "regression", "value": float(loss.point(out)) * std + mean, "unit": spec.unit}
            log_var = loss.log_variance(out)
            if log_var is not None:
                result[task]["std"] = float(torch.exp(0.5 * log_var)) * std
    return result


# Below these a picture carries (almost) no information, whatever the model answers.
MIN_INPUT_SIDE = 8  # pixels of the picture's shorter side as uploaded
MIN_CONTRAST = 12  # grey levels (of 255) between the darkest and the brightest pixel, outliers left out


def input_warning(image_source: Any) -> str | None:
    """One sentence when a picture is far from anything a model was trained on (tiny, blank, very low
    contrast), else None. A softmax still sums to 1 on such an input, so the model may look 100 % sure
    of a class it has no evidence for: the page says so next to the answer."""
    image = read_image(image_source, max_side=MAX_SIDE)
    width, height = image.size
    guess = "so the predictions below are guesses, however sure they look"
    if min(width, height) < MIN_INPUT_SIDE:
        return (f"This picture is only {width} x {height} pixels: it carries almost no information, {guess}; "
                f"use a picture of at least {MIN_INPUT_SIDE * 4} pixels a side.")
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    low, high = np.percentile(grey, [1, 99])
    if high - low < MIN_CONTRAST:
        kind = "blank" if high - low < 1 else "of very low contrast"
        return (f"This picture is {kind} (its brightness varies by {high - low:.0f} of 255 grey levels): there is "
                f"almost nothing for the model to see, {guess}.")
    return None


def predict_image(loaded: LoadedModel, image_source: Any) -> dict[str, Any]:
    """Preprocess a user's image and predict every task; also report the time."""
    started = time.perf_counter()
    x = preprocess(image_source, loaded.config.dataset.name, loaded.config.dataset.options)
    predictions = predict_tensor(loaded, x)
    return {"predictions": predictions, "milliseconds": round((time.perf_counter() - started) * 1000, 1)}
