"""How a run ends: the divergence check and the summary, one owner for both training loops.

``engine.fit`` trains one run and ``packing.loop.fit_packed`` trains many
stacked together; a student comparing the two should find that a run
diverges for the same reason and reports the same summary either way. So
both loops ask this module:

    diverged = divergence(config, losses, step)   # a sentence, or None while every loss is finite
    summary = end_summary(run, status, message, best_epoch, started)

The summary is what ``FitResult.summary`` holds and what the store keeps:
how the run ended, its size and speed, its validation and test metrics (not
when it diverged: a model full of NaNs has none worth reporting), its
calibration (``calibration.calibrate_run``) and, for an ensemble member, its
test outputs (``ensemble.test_outputs``).
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Mapping

from .calibration import calibrate_run
from .config import ExperimentConfig, divergence_causes
from .ensemble import test_outputs
from .models import count_parameters

if TYPE_CHECKING:  # the engine imports this module; only its names are needed here
    from .engine import TrainingRun

__all__ = ["DIVERGED_MESSAGE", "count_parameters", "diverged_message", "divergence", "end_summary",
           "first_non_finite"]

DIVERGED_MESSAGE = (
    "Training diverged: the loss of task {task!r} became {value} by step {step}. "
    "Try a lower learning rate (optim.lr, e.g. {lr:g})."
)


def diverged_message(config: ExperimentConfig, task: str, value: float, step: int) -> str:
    """Why a run diverged, in one sentence that names the likely cause.

    A setting far above its usual range (a loss weight of 500, a weight decay
    of 0.5) is named first: lowering the learning rate would only hide it.
    Otherwise the learning rate is the usual culprit.
    """
    causes = divergence_causes(config)
    if not causes:
        return DIVERGED_MESSAGE.format(task=task, value=value, step=step, lr=config.optim.lr / 10)
    return (
        f"Training diverged: the loss of task {task!r} became {value} by step {step}. The likely cause is "
        f"{' and '.join(causes)}, far above the usual range; make {'it' if len(causes) == 1 else 'them'} "
        f"smaller (or lower the learning rate, optim.lr={config.optim.lr:g})."
    )


def first_non_finite(values: Mapping[str, float]) -> tuple[str, float] | None:
    """The first task whose value is NaN or infinite, with that value; None when all are finite."""
    for task, value in values.items():
        if not math.isfinite(value):
            return task, value
    return None


def divergence(config: ExperimentConfig, losses: Mapping[str, float], step: int) -> str | None:
    """The sentence that ends a diverged run, when a task's loss in ``losses`` is not finite; else None.

    Both loops check a logged step's losses (read from the device anyway for
    the log) and each epoch's mean training losses (which catch the steps
    that were not logged, so not read).
    """
    bad = first_non_finite(losses)
    return None if bad is None else diverged_message(config, bad[0], bad[1], step)


def end_summary(run: "TrainingRun", status: str, message: str, best_epoch: int, started: float,
                evaluation: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The summary of a run that ended with ``status`` (finished, cancelled, diverged).

    ``started``: ``time.perf_counter()`` when its training began.
    ``evaluation``: its ``{"val": ..., "test": ...}`` metrics when the
    caller has them already (the packed loop evaluates every member in one
    pass); otherwise the run's own model is evaluated here, unless it
    diverged. ``extra`` entries (the packed loop's ``packed``: how many
    members trained together) follow ``seconds``. ``message`` "" becomes
    the usual sentence for a finished run.
    """
    summary: dict[str, Any] = {
        "status": status,
        "epochs": run.epoch,
        "steps": run.step,
        "best_epoch": best_epoch,
        "device": str(run.device),
        "speed": run.speed.describe(),
        "seconds": round(time.perf_counter() - started, 3),
        **extra,
        "tasks": {t: spec.as_dict() for t, spec in run.specs.items()},
        "parameters": count_parameters(run.model),
    }
    if status != "diverged":
        summary.update(evaluation if evaluation is not None
                       else {name: run.evaluate(name) for name in ("val", "test")})
        calibrate_run(run, summary)  # temperatures on val, ECE before/after on test; into the checkpoint too
        if run.config.train.bootstrap:  # an ensemble member: its test predictions, for the ensemble's score
            summary["test_outputs"] = test_outputs(run)
    summary["message"] = message or {"finished": f"Finished {run.epoch} epochs ({run.step} steps)."}.get(status, "")
    return summary
