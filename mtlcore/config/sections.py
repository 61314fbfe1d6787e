"""The sections of one experiment's configuration: frozen dataclasses of plain values.

``ExperimentConfig`` (experiment.py) holds one of each; the comments say
what each setting means and which values make sense.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An impossible or unknown setting; the message says what is allowed."""


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "shapes"
    seed: int = 0  # seed of the generated data and of the split (the run's own seed is ``seed``)
    # Dataset-specific options (see ``python -m mtlcore datasets``), e.g.
    # {"n_samples": 3000} for shapes or {"correlation": 0.5} for synthetic.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "hard"  # hard, soft, cross_stitch, mmoe, single
    trunk: str = "auto"  # auto (cnn for images, mlp for vectors), cnn, mlp, resnet18
    width: int = 32  # channels of the first conv block / hidden units of the MLP
    num_experts: int = 4  # MMoE only
    # The MLP trunk (vector inputs): hidden layers, and units per layer (0 = 2 x width). Ma et al.'s
    # matched budget (MMoE, KDD 2018, section 4.3) is one layer of 113 units for the shared bottom
    # against 8 experts of one 16-unit layer (expert_hidden, 0 = as the trunk), towers of 8 (head_hidden,
    # 0 = half the features, at least 16).
    layers: int = 2
    hidden: int = 0
    expert_hidden: int = 0
    head_hidden: int = 0


@dataclass(frozen=True)
class LossConfig:
    # Per-task loss weights (the sliders); a task not listed gets 1.0.
    weights: dict[str, float] = field(default_factory=dict)
    regression: str = "mse"  # mse, l1, huber, gaussian_nll (a mean and a variance)
    label_smoothing: float = 0.0
    focal_gamma: float = 0.0  # 0 = plain cross-entropy; > 0 = focal loss


@dataclass(frozen=True)
class WeightingConfig:
    method: str = "static"  # see mtlcore.weighting.WEIGHTINGS
    # Method-specific options, e.g. {"temperature": 2.0} for dwa.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # sgd, adam, adamw, rmsprop, adagrad
    lr: float = 0.003
    momentum: float = 0.9  # sgd and rmsprop
    schedule: str = "none"  # none, cosine, step
    step_size: int = 5  # epochs between decays of the step schedule
    gamma: float = 0.5  # decay factor of the step schedule


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    max_samples: int = 0  # 0 = all; else at most this many training samples
    patience: int = 0  # early stopping: epochs without validation gain; 0 = off
    log_every: int = 1  # steps between logged training losses
    diagnostics_every: int = 0  # steps between gradient diagnostics; 0 = off
    diagnostics_cosine: str = "exact"  # exact (shared parameters) or features (cheaper, approximate); see diagnostics.py
    precision: str = "auto"  # auto (bfloat16 where native and it pays), float32, bfloat16; see mtlcore/speed.py
    # Few labels: only this fraction of the training samples keeps its labels for the supervised
    # tasks (their loss ignores the rest); tasks that need no labels (reconstruction) see every sample.
    label_fraction: float = 1.0
    # Bagging (Breiman 1996): train on a bootstrap sample of the training split (n draws with
    # replacement, seeded by the run's seed); an ensemble member (mtlcore.ensemble).
    bootstrap: bool = False
    # A fork (mtlcore.runs.steering.fork): a checkpoint file whose model weights the run starts
    # from instead of fresh ones; "" = fresh weights, drawn from the seed.
    init_from: str = ""


@dataclass(frozen=True)
class RegConfig:
    weight_decay: float = 0.0
    l1: float = 0.0  # L1 penalty on the shared parameters
    dropout: float = 0.0
    batchnorm: bool = True
    soft_lambda: float = 0.01  # soft sharing: strength of the tie between columns
    soft_norm: str = "l2"  # soft sharing: l2 (squared distance) or l1
