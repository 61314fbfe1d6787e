"""Callbacks for training in the foreground: a progress bar and run files.

``RunFiles`` writes what DESIGN.md promises for ``python -m mtlcore train``:
``config.json``, ``metrics.jsonl`` (one JSON object per line), a checkpoint
after every epoch and at the end, and ``summary.json``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import save_checkpoint  # atomic: a reader never sees a half-written checkpoint
from .engine import Callback, FitResult, TrainingRun


class RunFiles(Callback):
    """Writes a run's config, metrics, checkpoints and summary under ``out``."""

    def __init__(self, out: Path | str):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._metrics = None

    def on_fit_start(self, run: TrainingRun) -> None:
        (self.out / "config.json").write_text(run.config.to_json() + "\n")
        self._metrics = open(self.out / "metrics.jsonl", "w")

    def _write(self, kind: str, logs: dict[str, Any]) -> None:
        self._metrics.write(json.dumps({"kind": kind, **logs}) + "\n")

    def on_step_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self._write("step", logs)

    def on_epoch_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self._write("epoch", logs)
        self._metrics.flush()
        save_checkpoint(self.out / "checkpoint.pt", run)

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        self._metrics.close()
        if result.status != "diverged":
            save_checkpoint(self.out / "checkpoint.pt", run)
        (self.out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")


class ProgressBar(Callback):
    """A tqdm bar over all training steps, showing each task's latest loss."""

    def __init__(self, **tqdm_kwargs: Any):
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None

    def on_fit_start(self, run: TrainingRun) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=run.total_steps, unit="step", **self.tqdm_kwargs)

    def on_step_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        self.bar.n = run.step
        self.bar.set_postfix({t: f"{v:.3f}" for t, v in logs["loss"].items()}, refresh=False)
        self.bar.update(0)

    def on_epoch_end(self, run: TrainingRun, logs: dict[str, Any]) -> None:
        parts = []
        for task, metrics in logs["val"].items():
            name = "accuracy" if "accuracy" in metrics else "mae"
            parts.append(f"{task} {name} {metrics[name]:.3f}")
        self.bar.write(f"epoch {logs['epoch']}: val " + ", ".join(parts))

    def on_fit_end(self, run: TrainingRun, result: FitResult) -> None:
        self.bar.close()
