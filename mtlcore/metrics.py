"""Per-task metrics, accumulated over batches.

Classification: accuracy (higher is better). Regression: mean absolute error
in the target's original units (lower is better) and R^2. Regression targets
are standardised for training, so errors are multiplied back by the training
split's standard deviation before they are reported.
"""
from __future__ import annotations

import torch

from .data import TaskSpec


class TaskMeter:
    """Running sums for one task over one pass through a split.

    Sums stay on the device as tensors and are read once, in ``result``,
    so that accumulating does not force a host synchronisation per batch.
    """

    def __init__(self, spec: TaskSpec, std: float = 1.0):
        self.spec = spec
        self.std = std
        self.count = 0
        self.loss_sum: torch.Tensor | float = 0.0
        self.correct: torch.Tensor | float = 0.0
        self.abs_err: torch.Tensor | float = 0.0
        self.sq_err: torch.Tensor | float = 0.0
        self.y_sum: torch.Tensor | float = 0.0
        self.y_sq_sum: torch.Tensor | float = 0.0

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        n = target.shape[0]
        self.count += n
        self.loss_sum = self.loss_sum + loss.detach().float() * n
        if self.spec.kind == "classification":
            self.correct = self.correct + (output.argmax(dim=-1) == target).sum()
        else:
            pred = output.detach().float().squeeze(-1)
            err = pred - target
            self.abs_err = self.abs_err + err.abs().sum()
            self.sq_err = self.sq_err + err.pow(2).sum()
            self.y_sum = self.y_sum + target.sum()
            self.y_sq_sum = self.y_sq_sum + target.pow(2).sum()

    def result(self) -> dict[str, float]:
        n = max(1, self.count)
        out = {"loss": float(self.loss_sum) / n}
        if self.spec.kind == "classification":
            out["accuracy"] = float(self.correct) / n
        else:
            out["mae"] = float(self.abs_err) / n * self.std
            total_var = float(self.y_sq_sum) / n - (float(self.y_sum) / n) ** 2
            out["r2"] = 1.0 - (float(self.sq_err) / n) / total_var if total_var > 1e-12 else 0.0
        return out


class SplitMeter:
    """Running sums for *every* task of a run over one pass through a split.

    The same numbers as one ``TaskMeter`` per task (which computes the
    metrics, in ``results``), with fewer operations per batch: the losses are
    stacked once, and the regression tasks' errors are taken together. On a
    tiny model each small operation costs about as much as a layer, and one
    ``TaskMeter`` per task took an eighth of the training step.
    """

    def __init__(self, specs: dict[str, TaskSpec], stds: dict[str, float]):
        self.specs, self.stds = specs, stds
        self.tasks = list(specs)
        self.classification = [t for t in self.tasks if specs[t].kind == "classification"]
        self.regression = [t for t in self.tasks if specs[t].kind != "classification"]
        self.count = 0
        self.loss_sum: torch.Tensor | float = 0.0  # per task
        self.correct: torch.Tensor | float = 0.0  # per classification task
        self.regression_sums: torch.Tensor | float = 0.0  # 4 x regression tasks: |err|, err^2, y, y^2

    @torch.no_grad()
    def update(self, outputs: dict[str, torch.Tensor], y: dict[str, torch.Tensor],
               losses: dict[str, torch.Tensor]) -> None:
        n = y[self.tasks[0]].shape[0]
        self.count += n
        self.loss_sum = self.loss_sum + torch.stack([losses[t] for t in self.tasks]).float() * n
        if self.classification:
            hits = [(outputs[t].argmax(dim=-1) == y[t]).sum() for t in self.classification]
            self.correct = self.correct + torch.stack(hits)
        if self.regression:
            pred = torch.stack([outputs[t].squeeze(-1) for t in self.regression], dim=1).float()
            target = torch.stack([y[t] for t in self.regression], dim=1)
            err = pred - target
            sums = [err.abs().sum(0), err.pow(2).sum(0), target.sum(0), target.pow(2).sum(0)]
            self.regression_sums = self.regression_sums + torch.stack(sums)

    def results(self) -> dict[str, dict[str, float]]:
        """{task: metrics}, read from the device in one go per kind of sum."""
        meters = {t: TaskMeter(spec, self.stds.get(t, 1.0)) for t, spec in self.specs.items()}
        losses = as_list(self.loss_sum, len(self.tasks))
        correct = as_list(self.correct, len(self.classification))
        sums = torch.as_tensor(self.regression_sums).expand(4, len(self.regression)).tolist()
        for i, t in enumerate(self.tasks):
            meters[t].count, meters[t].loss_sum = self.count, losses[i]
        for i, t in enumerate(self.classification):
            meters[t].correct = correct[i]
        for i, t in enumerate(self.regression):
            m = meters[t]
            m.abs_err, m.sq_err, m.y_sum, m.y_sq_sum = (row[i] for row in sums)
        return {t: meters[t].result() for t in self.tasks}


def as_list(sums: torch.Tensor | float, n: int) -> list[float]:
    """Running sums as n floats (zeros when nothing was added)."""
    return torch.as_tensor(sums, dtype=torch.float64).expand(n).tolist()


def score_from_losses(losses: dict[str, float], weights: dict[str, float]) -> float:
    """The weighted sum of losses that early stopping watches (lower is better)."""
    return sum(weights.get(t, 1.0) * v for t, v in losses.items())
