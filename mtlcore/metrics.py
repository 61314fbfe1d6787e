"""Per-task metrics, accumulated over batches.

Classification: accuracy (higher is better). Regression: mean absolute error
in the target's original units (lower is better) and R^2. Regression targets
are standardised for training, so errors are multiplied back by the training
split's standard deviation before they are reported.

A reconstruction task reports ``mse``, its loss: the mean squared error per
pixel in the normalised input space (lower is better).

A regression task whose loss predicts a variance (``loss.regression=
gaussian_nll``, Kendall & Gal 2017) also reports ``nll``, the mean negative
log-likelihood of the test targets in their original units (with the
constant 0.5 log 2 pi, so it compares with any Gaussian model), and
``coverage90``, the fraction of targets inside the predicted 90 % interval
mu +/- 1.645 sigma: a calibrated model covers about 0.9 of them.
"""
from __future__ import annotations

import torch

from .data import TaskSpec
from .losses import Z_90, TaskLoss, gaussian_nll_in_units


class TaskMeter:
    """Running sums for one task over one pass through a split.

    Sums stay on the device as tensors and are read once, in ``result``,
    so that accumulating does not force a host synchronisation per batch.
    """

    def __init__(self, spec: TaskSpec, std: float = 1.0, loss: TaskLoss | None = None):
        self.spec = spec
        self.std = std
        self.loss = loss  # how to read the output (its point and log-variance); None: one value
        self.count = 0
        self.loss_sum: torch.Tensor | float = 0.0
        self.correct: torch.Tensor | float = 0.0
        self.abs_err: torch.Tensor | float = 0.0
        self.sq_err: torch.Tensor | float = 0.0
        self.y_sum: torch.Tensor | float = 0.0
        self.y_sq_sum: torch.Tensor | float = 0.0
        self.nll_sum: torch.Tensor | float | None = None  # set when the loss predicts a variance
        self.covered: torch.Tensor | float = 0.0

    @torch.no_grad()
    def update(self, output: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        n = target.shape[0]
        self.count += n
        self.loss_sum = self.loss_sum + loss.detach().float() * n
        if self.spec.kind == "classification":
            self.correct = self.correct + (output.argmax(dim=-1) == target).sum()
        elif self.spec.kind == "regression":
            output = output.detach().float()
            pred = self.loss.point(output) if self.loss is not None else output.squeeze(-1)
            err = pred - target
            self.abs_err = self.abs_err + err.abs().sum()
            self.sq_err = self.sq_err + err.pow(2).sum()
            self.y_sum = self.y_sum + target.sum()
            self.y_sq_sum = self.y_sq_sum + target.pow(2).sum()
            log_var = self.loss.log_variance(output) if self.loss is not None else None
            if log_var is not None:
                nll, covered = uncertainty_sums(pred, log_var, target, self.std)
                self.nll_sum = (0.0 if self.nll_sum is None else self.nll_sum) + nll  # no truth test: no sync
                self.covered = self.covered + covered

    def result(self) -> dict[str, float]:
        n = max(1, self.count)
        out = {"loss": float(self.loss_sum) / n}
        if self.spec.kind == "classification":
            out["accuracy"] = float(self.correct) / n
        elif self.spec.kind == "reconstruction":
            out["mse"] = out["loss"]
        else:
            out["mae"] = float(self.abs_err) / n * self.std
            total_var = float(self.y_sq_sum) / n - (float(self.y_sum) / n) ** 2
            out["r2"] = 1.0 - (float(self.sq_err) / n) / total_var if total_var > 1e-12 else 0.0
            if self.nll_sum is not None:
                out["nll"] = float(self.nll_sum) / n
                out["coverage90"] = float(self.covered) / n
        return out


def uncertainty_sums(mu: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                     std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL (original units) and the count of targets inside mu +/- 1.645 sigma."""
    nll = gaussian_nll_in_units(mu, log_var, target, std).sum()
    covered = ((target - mu).abs() <= Z_90 * torch.exp(0.5 * log_var)).sum()
    return nll, covered


class SplitMeter:
    """Running sums for *every* task of a run over one pass through a split.

    The same numbers as one ``TaskMeter`` per task (which computes the
    metrics, in ``results``), with fewer operations per batch: the losses are
    stacked once, and the regression tasks' errors are taken together. On a
    tiny model each small operation costs about as much as a layer, and one
    ``TaskMeter`` per task took an eighth of the training step.
    """

    def __init__(self, specs: dict[str, TaskSpec], stds: dict[str, float],
                 losses: dict[str, TaskLoss] | None = None):
        self.specs, self.stds, self.losses = specs, stds, losses or {}
        self.tasks = list(specs)
        self.classification = [t for t in self.tasks if specs[t].kind == "classification"]
        self.regression = [t for t in self.tasks if specs[t].kind == "regression"]
        # Regression tasks whose loss predicts a variance: they also get nll and coverage90.
        self.uncertain = [t for t in self.regression
                          if t in self.losses and self.losses[t].predicts_variance]
        self.uncertainty_sums: dict[str, list] = {t: [0.0, 0.0] for t in self.uncertain}
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
            pred = torch.stack([self._point(t, outputs[t]) for t in self.regression], dim=1).float()
            target = torch.stack([y[t] for t in self.regression], dim=1)
            err = pred - target
            sums = [err.abs().sum(0), err.pow(2).sum(0), target.sum(0), target.pow(2).sum(0)]
            self.regression_sums = self.regression_sums + torch.stack(sums)
        for t in self.uncertain:
            out, loss = outputs[t].float(), self.losses[t]
            nll, covered = uncertainty_sums(loss.point(out), loss.log_variance(out), y[t], self.stds.get(t, 1.0))
            running = self.uncertainty_sums[t]
            running[0], running[1] = running[0] + nll, running[1] + covered

    def _point(self, task: str, output: torch.Tensor) -> torch.Tensor:
        loss = self.losses.get(task)
        return loss.point(output) if loss is not None else output.squeeze(-1)

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
        for t, (nll, covered) in self.uncertainty_sums.items():
            meters[t].nll_sum, meters[t].covered = float(nll), float(covered)
        return {t: meters[t].result() for t in self.tasks}


def as_list(sums: torch.Tensor | float, n: int) -> list[float]:
    """Running sums as n floats (zeros when nothing was added)."""
    return torch.as_tensor(sums, dtype=torch.float64).expand(n).tolist()


def score_from_losses(losses: dict[str, float], weights: dict[str, float]) -> float:
    """The weighted sum of losses that early stopping watches (lower is better)."""
    return sum(weights.get(t, 1.0) * v for t, v in losses.items())
