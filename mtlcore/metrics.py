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


def score_from_losses(losses: dict[str, float], weights: dict[str, float]) -> float:
    """The weighted sum of losses that early stopping watches (lower is better)."""
    return sum(weights.get(t, 1.0) * v for t, v in losses.items())
