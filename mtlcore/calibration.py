"""Calibration of classification tasks: expected calibration error and temperature scaling.

A classifier is *calibrated* when, among the inputs it gives 80 % confidence,
it is right 80 % of the time. Guo, Pleiss, Sun & Weinberger (ICML 2017, "On
Calibration of Modern Neural Networks") showed that modern networks are often
over-confident, and measured it with the

expected calibration error (ECE, their eq. 3): the predictions are sorted
    by confidence (the largest softmax probability) into M = 15 equal-width
    bins B_m of (0, 1]; then ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|,
    the gap between accuracy and confidence, weighted by how many
    predictions each bin holds. The *reliability diagram* draws acc(B_m)
    against conf(B_m): a calibrated model lies on the diagonal.

temperature scaling (their section 4.2): divide every logit by one scalar
    T > 0 before the softmax, with T fitted on the validation split to
    minimise the negative log-likelihood (NLL). T > 1 flattens the
    probabilities (less confident), T < 1 sharpens them. The argmax does not
    change, so the accuracy stays the same; only the confidence moves. As
    in the paper's code, T is optimised with L-BFGS; we optimise log T so
    that T stays positive without a constraint.

``calibrate_run`` is called by the engine where a run's summary is built:
it fits one temperature per classification task, adds ``ece``,
``ece_calibrated``, ``nll``, ``nll_calibrated`` and ``temperature`` to the
summary's val and test metrics, the reliability bins to
``summary["calibration"]``, and keeps the temperatures on the run so that
its checkpoint (and so Predict) uses them.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .engine import TrainingRun

__all__ = ["BINS", "calibrate_run", "calibration_rows", "expected_calibration_error", "fit_temperature", "nll",
           "reliability_bins", "softmax", "uncertainty_rows"]

BINS = 15  # Guo et al. 2017 use 15 equal-width bins
EVAL_BATCH = 1024
MIN_T, MAX_T = 0.01, 100.0  # a fitted temperature outside this says the split is too small to tell


def reliability_bins(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                     bins: int = BINS) -> list[dict[str, float]]:
    """Per confidence bin (lower, upper]: how many predictions, their accuracy and mean confidence."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).float()
    # Bin m holds confidences in (m/M, (m+1)/M]; a confidence of exactly 0 cannot occur after a softmax.
    index = torch.clamp(torch.ceil(confidence * bins).long() - 1, 0, bins - 1)
    count = torch.bincount(index, minlength=bins).float()
    hits = torch.bincount(index, weights=correct, minlength=bins)
    sure = torch.bincount(index, weights=confidence, minlength=bins)
    rows = []
    for m in range(bins):
        n = float(count[m])
        rows.append({"lower": m / bins, "upper": (m + 1) / bins, "count": int(n),
                     "accuracy": float(hits[m]) / n if n else 0.0,
                     "confidence": float(sure[m]) / n if n else 0.0})
    return rows


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                               bins: int = BINS) -> float:
    """ECE (Guo et al. 2017, eq. 3): sum over bins of |B|/n * |accuracy(B) - confidence(B)|."""
    rows = reliability_bins(logits, labels, temperature, bins)
    n = sum(r["count"] for r in rows)
    return sum(r["count"] / n * abs(r["accuracy"] - r["confidence"]) for r in rows) if n else 0.0


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (natural log) of the labels under softmax(logits / T)."""
    return float(F.cross_entropy(logits.float() / temperature, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The T > 0 minimising NLL(softmax(logits / T), labels): L-BFGS on log T (Guo et al. 2017, 4.2)."""
    logits, labels = logits.detach().float(), labels.detach()
    if logits.shape[0] == 0:
        return 1.0
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        return 1.0
    return min(MAX_T, max(MIN_T, t))


def softmax(logits: Sequence[float], temperature: float = 1.0) -> list[float]:
    """softmax(logits / T) in plain Python: what the Predict page's temperature slider shows."""
    scaled = [v / temperature for v in logits]
    top = max(scaled)
    exps = [math.exp(v - top) for v in scaled]
    total = sum(exps)
    return [e / total for e in exps]


@torch.no_grad()
def split_logits(run: "TrainingRun", split_name: str, tasks: list[str]) -> tuple[dict, dict]:
    """Every listed task's logits and labels on a split, in eval mode (float32, on the CPU)."""
    run.model.eval()
    logits: dict[str, list[torch.Tensor]] = {t: [] for t in tasks}
    labels: dict[str, list[torch.Tensor]] = {t: [] for t in tasks}
    for x, y in run.batches(run.splits[split_name], EVAL_BATCH, shuffle=False):
        outputs, _ = run.task_losses(x, y)
        for t in tasks:
            logits[t].append(outputs[t].detach().float().cpu())
            labels[t].append(y[t].cpu())
    return ({t: torch.cat(v) for t, v in logits.items()}, {t: torch.cat(v) for t, v in labels.items()})


def scores(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> dict[str, float]:
    """ECE and NLL before (T = 1) and after temperature scaling."""
    return {
        "ece": expected_calibration_error(logits, labels),
        "ece_calibrated": expected_calibration_error(logits, labels, temperature),
        "nll": nll(logits, labels),
        "nll_calibrated": nll(logits, labels, temperature),
        "temperature": temperature,
    }


def calibrate_run(run: "TrainingRun", summary: dict[str, Any]) -> None:
    """Fit each classification task's temperature on val; add ECE/NLL before and after to ``summary``.

    Only adds keys (``summary["val"|"test"][task]`` and ``summary["calibration"]``)
    and sets ``run.temperatures``; a run without classification tasks or
    without a test evaluation is left as it is.
    """
    tasks = [t for t, spec in run.specs.items() if spec.kind == "classification"]
    if not tasks or "test" not in summary or len(run.splits["val"]) == 0:
        return
    val_logits, val_labels = split_logits(run, "val", tasks)
    test_logits, test_labels = split_logits(run, "test", tasks)
    calibration = summary.setdefault("calibration", {})
    for t in tasks:
        temperature = fit_temperature(val_logits[t], val_labels[t])
        run.temperatures[t] = temperature
        summary.setdefault("val", {}).setdefault(t, {}).update(scores(val_logits[t], val_labels[t], temperature))
        summary["test"].setdefault(t, {}).update(scores(test_logits[t], test_labels[t], temperature))
        calibration[t] = {
            "temperature": temperature,
            "split": "test",
            "bins": reliability_bins(test_logits[t], test_labels[t]),
            "bins_calibrated": reliability_bins(test_logits[t], test_labels[t], temperature),
        }


# ----- tables for the pages (plain data, no tensors) ---------------------------------------

def calibration_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per run and classification task that has been calibrated: accuracy, ECE and NLL before/after, T.

    ``runs``: anything with ``id``, ``label`` and ``summary`` (RunRecords).
    """
    rows = []
    for run in runs:
        summary = getattr(run, "summary", None) or {}
        for task, metrics in (summary.get("test") or {}).items():
            if "ece" not in metrics:
                continue
            rows.append({"label": run.label, "run": run.id, "task": task, "accuracy": metrics.get("accuracy"),
                         "ECE": metrics["ece"], "ECE after T": metrics.get("ece_calibrated"),
                         "NLL": metrics.get("nll"), "NLL after T": metrics.get("nll_calibrated"),
                         "temperature T": metrics.get("temperature")})
    return rows


def uncertainty_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per run and regression task that predicts a variance: MAE, NLL and the 90 % interval's coverage."""
    rows = []
    for run in runs:
        summary = getattr(run, "summary", None) or {}
        for task, metrics in (summary.get("test") or {}).items():
            if "coverage90" not in metrics:
                continue
            rows.append({"label": run.label, "run": run.id, "task": task, "mae": metrics.get("mae"),
                         "NLL": metrics.get("nll"), "coverage of the 90 % interval": metrics["coverage90"]})
    return rows
