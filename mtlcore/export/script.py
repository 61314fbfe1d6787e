""""Show the code": a run as a standalone, readable PyTorch script, and its data as a tensor file.

``render_script(config, ...)`` fills ``script_template`` with the run's
settings; ``export_dataset(config, path)`` writes the very splits the run
trained, validated and was tested on (regression targets standardised, with
their mean and std), so the script reproduces the run's metrics within seed
noise with nothing but PyTorch.

The generator covers what a student meets first: hard parameter sharing and
single-task runs, with fixed loss weights (``static``, ``equal``), a CNN or
an MLP trunk, every loss and optimiser the lab offers, and no early stopping.
``script_problem`` says in one sentence why another run is not covered.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from ..config import ExperimentConfig
from ..data import dataset_info, load_dataset
from . import script_template as template

__all__ = ["COVERED", "dataset_bytes", "export_dataset", "render_script", "script_problem"]

MAX_DATA_BYTES = 2 * 2**30  # a tensor file a laptop can load
ARCHITECTURES = ("hard", "single")  # single is hard sharing with one head: the same forward
METHODS = ("static", "equal")  # fixed weights: the script writes them down as numbers
TRUNKS = {"cnn": template.CNN_TRUNK, "mlp": template.MLP_TRUNK}
COVERED = ("hard sharing and single-task runs (model.arch hard or single) with static or equal loss "
           "weights, a cnn or mlp trunk and no early stopping")


def trunk_of(config: ExperimentConfig) -> str:
    """The trunk the run really used (``auto``: a CNN for images, an MLP for vectors)."""
    if config.model.trunk != "auto":
        return config.model.trunk
    return "cnn" if dataset_info(config.dataset.name).input_kind == "image" else "mlp"


def script_problem(config: ExperimentConfig) -> str | None:
    """None when the run can be written as a standalone script, else one sentence saying why not."""
    if config.model.arch not in ARCHITECTURES:
        return (f"The standalone script covers {COVERED}; this run uses model.arch={config.model.arch}, "
                "which it does not write out.")
    if config.weighting.method not in METHODS:
        return (f"The standalone script covers {COVERED}; this run uses weighting.method="
                f"{config.weighting.method}, which it does not write out.")
    if trunk_of(config) not in TRUNKS:
        return f"The standalone script covers {COVERED}; this run uses model.trunk={config.model.trunk}."
    if config.train.patience:
        return f"The standalone script covers {COVERED}; this run stops early (train.patience={config.train.patience})."
    if config.train.init_from:  # a fork: its start is another run's trained weights, not the seed's
        return (f"The standalone script covers {COVERED}, trained from fresh weights; this run is a fork that started "
                "from another run's saved weights (train.init_from), which it does not write out.")
    if config.train.label_fraction < 1 or config.train.bootstrap:
        return (f"The standalone script covers {COVERED}, trained on every label of the training split; this run "
                "uses train.label_fraction or train.bootstrap, which it does not write out.")
    info = dataset_info(config.dataset.name)
    others = [t for t in config.tasks if info.task(t).kind not in ("classification", "regression")]
    if others:
        return (f"The standalone script covers classification and regression tasks; this run also has "
                f"{', '.join(others)}, which it does not write out.")
    default = type(config.model)()
    sized = [f"model.{k}={getattr(config.model, k)}" for k in ("layers", "hidden", "head_hidden")
             if getattr(config.model, k) != getattr(default, k)]
    if sized:
        return (f"The standalone script covers {COVERED} at the default layer sizes; this run sets "
                f"{', '.join(sized)}, which it does not write out.")
    return None


def loss_weights(config: ExperimentConfig) -> dict[str, float]:
    """Each task's weight in the total loss, as the run's method set it up (sliders, or 1 under ``equal``)."""
    from ..weighting import create_weighting

    method = create_weighting(config.weighting.method, **config.weighting.options)
    method.setup(list(config.tasks), dict(config.loss.weights), None)
    return {t: float(method.user_weights[t]) for t in config.tasks}


def render_script(config: ExperimentConfig, run: str = "", script_name: str = "train_run.py",
                  data_name: str = "train_run_data.pt") -> str:
    """The standalone script for ``config`` (raises ValueError with ``script_problem``'s sentence)."""
    problem = script_problem(config)
    if problem:
        raise ValueError(problem)
    info = dataset_info(config.dataset.name)
    specs = {t: info.task(t) for t in config.tasks}
    tasks = {t: {"kind": s.kind, "classes": s.num_classes} for t, s in specs.items()}
    architecture = "one trunk and one head" if config.model.arch == "single" else "one trunk, a head per task"
    o, r = config.optim, config.reg
    values: dict[str, Any] = {
        "tasks": one_per_line(tasks), "weights": repr(loss_weights(config)), "regression": repr(config.loss.regression),
        "label_smoothing": config.loss.label_smoothing, "focal_gamma": config.loss.focal_gamma,
        "width": config.model.width, "batchnorm": r.batchnorm, "dropout": r.dropout,
        "optimiser": repr(o.name), "lr": o.lr, "momentum": o.momentum, "weight_decay": r.weight_decay, "l1": r.l1,
        "schedule": repr(o.schedule), "step_size": o.step_size, "gamma": o.gamma,
        "epochs": config.train.epochs, "batch_size": config.train.batch_size, "seed": config.seed,
    }
    title = (f"{config.dataset.name}: {', '.join(config.tasks)} ({config.model.arch}, {o.name}, lr {o.lr:g}, "
             f"{config.train.epochs} epochs) as a standalone PyTorch script.")
    # Names are user text (an imported CSV's columns) going into a docstring: no quote may close it.
    header = template.HEADER.substitute(title=plain(title), run=plain(run or "(unnamed)"),
                                        script_name=plain(script_name), data_name=plain(data_name),
                                        epochs=config.train.epochs, architecture=architecture)
    return header + template.SETTINGS.substitute(values) + TRUNKS[trunk_of(config)] + template.BODY


def one_per_line(mapping: dict[str, Any]) -> str:
    """A dict literal with one entry a line, for the reader."""
    return "{\n" + "".join(f"    {key!r}: {value!r},\n" for key, value in mapping.items()) + "}"


def plain(text: str) -> str:
    """``text`` with only letters, digits, spaces and ``.,:;()+-_=/`` kept (others become ``_``)."""
    return re.sub(r"[^\w .,:;()+\-=/]", "_", str(text))


def dataset_tensors(config: ExperimentConfig) -> dict[str, Any]:
    """The run's splits as plain tensors: what ``TrainingRun`` trains on (``train.max_samples`` applied)."""
    data = load_dataset(config.dataset.name, seed=config.dataset.seed, **config.dataset.options)
    train = data.train if not config.train.max_samples else data.train.subset(config.train.max_samples)
    out: dict[str, Any] = {}
    for name, split in (("train", train), ("val", data.val), ("test", data.test)):
        split = split.select_tasks(config.tasks)
        out[name] = {"x": split.x.contiguous().float(), "y": {t: v.contiguous() for t, v in split.y.items()}}
    size = sum(v.numel() * v.element_size() for split in ("train", "val", "test")
               for v in (out[split]["x"], *out[split]["y"].values()))
    if size > MAX_DATA_BYTES:
        raise ValueError(f"The run's data would be a {size / 2**30:.1f} GiB tensor file, more than "
                         f"{MAX_DATA_BYTES / 2**30:.0f} GiB; train with a smaller train.max_samples to export it.")
    out["target_stats"] = {t: [float(v[0]), float(v[1])] for t, v in data.target_stats.items() if t in config.tasks}
    out["tasks"] = {t: {"kind": data.tasks[t].kind, "classes": list(data.tasks[t].classes)} for t in config.tasks}
    return out


def dataset_bytes(config: ExperimentConfig) -> bytes:
    """The run's data file as bytes (the Predict page's download)."""
    buffer = io.BytesIO()
    torch.save(dataset_tensors(config), buffer)
    return buffer.getvalue()


def export_dataset(config: ExperimentConfig, path: Path | str) -> Path:
    """Write the run's data as a tensor file (``torch.load(path, weights_only=True)`` reads it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dataset_tensors(config), path)
    return path
