"""Per-task loss functions.

Classification: cross-entropy, optionally with label smoothing (Szegedy et al.,
CVPR 2016) or as the focal loss (Lin et al., ICCV 2017), which down-weights
examples the model already gets right:  FL = -(1 - p_t)^gamma * log p_t.
Regression: mean squared error, mean absolute error (L1) or Huber.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .config import LossConfig
from .data import TaskSpec

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float, smoothing: float) -> torch.Tensor:
    log_p = F.log_softmax(logits, dim=-1)
    ce = F.nll_loss(log_p, target, reduction="none")
    if smoothing > 0:
        ce = (1 - smoothing) * ce - smoothing * log_p.mean(dim=-1)
    p_true = log_p.gather(1, target.unsqueeze(1)).squeeze(1).exp()
    return ((1 - p_true) ** gamma * ce).mean()


def make_loss(spec: TaskSpec, config: LossConfig) -> LossFn:
    """The loss of one task, as ``loss(output, target) -> scalar``."""
    if spec.kind == "classification":
        if config.focal_gamma > 0:
            return lambda out, y: focal_loss(out, y, config.focal_gamma, config.label_smoothing)
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=config.label_smoothing)
    regression = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}[config.regression]
    return lambda out, y: regression(out.squeeze(-1), y)
