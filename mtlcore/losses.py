"""Per-task loss functions, and what each one asks of its task's head.

Classification: cross-entropy, optionally with label smoothing (Szegedy et al.,
CVPR 2016) or as the focal loss (Lin et al., ICCV 2017), which down-weights
examples the model already gets right:  FL = -(1 - p_t)^gamma * log p_t.
Regression: mean squared error, mean absolute error (L1), Huber, or the
Gaussian negative log-likelihood of heteroscedastic regression (Kendall & Gal,
NeurIPS 2017, "What Uncertainties Do We Need in Bayesian Deep Learning for
Computer Vision?", eq. 5 and 8): the head predicts a mean mu and a
log-variance s = log sigma^2 for every input, and the loss is

    L = 0.5 * (exp(-s) * (y - mu)^2 + s)

(the constant 0.5 log 2 pi left out, as in the paper). Predicting s rather
than sigma^2 keeps the loss finite: exp(-s) never divides by zero. The model
learns to say "I am unsure here" (large s) instead of paying the full squared
error on noisy targets.

Reconstruction (the auxiliary task of ``data.base.reconstruction_task``): the
mean squared error per pixel between the head's C*H*W outputs and the
normalised input, the usual autoencoder loss.

A loss is an object, not a bare function, because it decides how many numbers
the head outputs (``output_size``) and how to read them (``point``,
``log_variance``). The engine, the metrics and prediction ask the loss; none
of them looks at its name.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .config import LossConfig
from .data import TaskSpec

__all__ = ["GaussianNLL", "REGRESSION_LOSS_NAMES", "Reconstruction", "TaskLoss", "Z_90", "focal_loss", "gaussian_nll_in_units",
           "loss_problem", "make_loss", "output_size", "packs"]

#: Two-sided 90 % interval of a normal distribution: mu +/- 1.645 sigma.
Z_90 = 1.6448536269514722


class TaskLoss:
    """One task's loss: ``loss(output, target) -> scalar``, and how to read the head's output.

    ``output_size`` is the number of outputs the head needs; ``point`` the
    prediction (class scores, or the regression value in standardised
    units); ``log_variance`` the predicted log-variance, or None when the
    loss predicts no uncertainty (``predicts_variance`` says which).
    ``packs``: whether packed training (which reads a regression output as
    one number) can train it.
    """

    output_size: int = 1
    packs: bool = True
    predicts_variance: bool = False

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def point(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def log_variance(self, output: torch.Tensor) -> torch.Tensor | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropy(TaskLoss):
    def __init__(self, num_classes: int, smoothing: float = 0.0):
        self.output_size, self.smoothing = num_classes, smoothing

    def __call__(self, output, target):
        return F.cross_entropy(output, target, label_smoothing=self.smoothing)


class Focal(TaskLoss):
    def __init__(self, num_classes: int, gamma: float, smoothing: float = 0.0):
        self.output_size, self.gamma, self.smoothing = num_classes, gamma, smoothing

    def __call__(self, output, target):
        return focal_loss(output, target, self.gamma, self.smoothing)


class PointRegression(TaskLoss):
    """A regression loss on one predicted value (mse, l1, huber)."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.name, self.fn = name, fn

    def __call__(self, output, target):
        return self.fn(output[..., 0], target)

    def point(self, output):
        return output[..., 0]

    def __repr__(self) -> str:
        return f"PointRegression({self.name!r})"


class GaussianNLL(TaskLoss):
    """Heteroscedastic Gaussian NLL (Kendall & Gal 2017): output[..., 0] = mu, output[..., 1] = log sigma^2.

    Packed training reads one regression output per task, so these runs
    train alone (``packs`` is False).
    """

    output_size = 2
    packs = False
    predicts_variance = True

    def __call__(self, output, target):
        mu, s = output[..., 0], output[..., 1]
        return 0.5 * (torch.exp(-s) * (target - mu).pow(2) + s).mean()

    def point(self, output):
        return output[..., 0]

    def log_variance(self, output):
        return output[..., 1]


class Reconstruction(TaskLoss):
    """MSE per pixel between the head's flat output and the input (the target), in the normalised input space.

    The head is the task's ordinary small head with C*H*W outputs: a fully
    connected decoder on the shared features. ``point`` gives the rebuilt
    image. Packed training stacks one number per regression task, so these
    runs train alone (``packs`` is False).
    """

    packs = False

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.output_size = math.prod(self.shape)

    def __call__(self, output, target):
        return F.mse_loss(output, target.flatten(1))

    def point(self, output):
        return output.reshape(*output.shape[:-1], *self.shape)

    def __repr__(self) -> str:
        return f"Reconstruction(shape={self.shape})"


REGRESSION_LOSSES: dict[str, Callable[[], TaskLoss]] = {
    "mse": lambda: PointRegression("mse", F.mse_loss),
    "l1": lambda: PointRegression("l1", F.l1_loss),
    "huber": lambda: PointRegression("huber", F.huber_loss),
    "gaussian_nll": GaussianNLL,
}
REGRESSION_LOSS_NAMES = tuple(REGRESSION_LOSSES)


def loss_problem(config: LossConfig) -> str | None:
    """Why ``loss.regression`` is not a known loss (one sentence listing the valid ones); None if it is."""
    if config.regression not in REGRESSION_LOSSES:
        return (f"Unknown regression loss {config.regression!r} (loss.regression); choose one of: "
                f"{', '.join(REGRESSION_LOSS_NAMES)}.")
    return None


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float, smoothing: float) -> torch.Tensor:
    log_p = F.log_softmax(logits, dim=-1)
    ce = F.nll_loss(log_p, target, reduction="none")
    if smoothing > 0:
        ce = (1 - smoothing) * ce - smoothing * log_p.mean(dim=-1)
    p_true = log_p.gather(1, target.unsqueeze(1)).squeeze(1).exp()
    return ((1 - p_true) ** gamma * ce).mean()


def make_loss(spec: TaskSpec, config: LossConfig) -> TaskLoss:
    """The loss of one task, as ``loss(output, target) -> scalar`` with ``output_size`` etc."""
    if spec.kind == "reconstruction":
        return Reconstruction(spec.shape)
    if spec.kind == "classification":
        if config.focal_gamma > 0:
            return Focal(spec.num_classes, config.focal_gamma, config.label_smoothing)
        return CrossEntropy(spec.num_classes, config.label_smoothing)
    return REGRESSION_LOSSES[config.regression]()


def output_size(spec: TaskSpec, config: LossConfig) -> int:
    """How many outputs the head of ``spec`` needs under the loss settings ``config``."""
    return make_loss(spec, config).output_size


def packs(config: LossConfig) -> bool:
    """Whether every task's loss under ``config`` can be trained packed (see ``mtlcore.packing``)."""
    regression = REGRESSION_LOSSES.get(config.regression)
    return regression is None or regression().packs


def gaussian_nll_in_units(mu: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                          std: float) -> torch.Tensor:
    """Per-example full Gaussian NLL in the target's original units (with 0.5 log 2 pi).

    Targets are standardised, y = (y_orig - mean) / std; the density of
    y_orig is the density of y divided by std, so its NLL is larger by log std.
    """
    return 0.5 * (torch.exp(-log_var) * (target - mu).pow(2) + log_var + math.log(2 * math.pi)) + math.log(std)
