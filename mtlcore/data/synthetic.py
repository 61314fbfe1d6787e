"""Synthetic: two regression tasks whose relatedness you choose.

The benchmark of Ma et al., "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts" (MMoE, KDD 2018, section 3.2).
With input dimension ``d``, two orthogonal unit vectors u1, u2, a scale c and
a correlation p in [-1, 1]:

    w_a = c * u1
    w_b = c * (p * u1 + sqrt(1 - p^2) * u2)
    x   ~ N(0, I_d)
    y_a = w_a.x + sum_{i=1..m} sin(alpha_i * w_a.x + beta_i) + noise_a
    y_b = w_b.x + sum_{i=1..m} sin(alpha_i * w_b.x + beta_i) + noise_b

with alpha_i, beta_i ~ N(0, sine_std^2) shared by both tasks and noise ~ N(0, 0.01)
(variance 0.01, standard deviation 0.1), as in the paper. The paper gives the noise's
variance but no values for alpha_i and beta_i ("given parameters"); the default
sine_std = 0.1 leaves the tasks almost linear (the linear part explains about
98.6 % of a label's variance), and sine_std = 1 (as in common re-implementations)
bends them (about 50 %). Because the
weight vectors have equal length, the Pearson correlation of the two linear
parts w_a.x and w_b.x is exactly p; the sines make the tasks mildly
non-linear, so the correlation of the labels is close to, not equal to, p.

The teaching point: the lower the correlation, the less one task's
training signal helps the other, so the benefit of sharing a trunk shrinks
(and below zero it can turn into harm); architectures such as MMoE, which
learn how much to share, degrade more gracefully as p drops.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec, split_indices, standardise_regression

TASKS = (
    TaskSpec("task_a", "regression", description="y_a = w_a.x + sum of sines + noise."),
    TaskSpec("task_b", "regression", description="y_b = w_b.x + sum of sines + noise; w_b is at correlation p to w_a."),
)
PARAMETER_STD = 0.1  # alpha_i, beta_i ~ N(0, 0.01) by default (option sine_std)
NOISE_STD = 0.1  # noise ~ N(0, 0.01)


MAX_SCALE = 1000.0  # targets grow with the scale; beyond this only overflow is taught


def check_options(n_samples: int, dim: int, correlation: float, scale: float, n_sines: int,
                  sine_std: float = PARAMETER_STD) -> None:
    """Raise one clear ValueError for an option outside its accepted range."""
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"synthetic: correlation must be between -1 and 1, got {correlation}.")
    if not 2 <= dim <= 10_000:
        raise ValueError(f"synthetic: dim must be between 2 and 10000 (two orthogonal directions are needed), got {dim}.")
    if not 20 <= n_samples <= 1_000_000:
        raise ValueError(f"synthetic: n_samples must be between 20 and 1000000, got {n_samples}.")
    if not 0 < scale <= MAX_SCALE:  # also refuses inf and nan
        raise ValueError(f"synthetic: scale must be above 0 and at most {MAX_SCALE}, got {scale}.")
    if not 0 <= n_sines <= 1000:
        raise ValueError(f"synthetic: n_sines must be between 0 and 1000, got {n_sines}.")
    if not 0 <= sine_std <= 100:  # also refuses inf and nan
        raise ValueError(f"synthetic: sine_std must be between 0 and 100, got {sine_std}.")


def task_weights(rng: np.random.RandomState, dim: int, correlation: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """w_a and w_b: equal length ``scale``, cosine similarity ``correlation``."""
    # QR of a Gaussian matrix gives orthonormal columns: two random, orthogonal unit vectors.
    q, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
    u1, u2 = q[:, 0], q[:, 1]
    w_a = scale * u1
    w_b = scale * (correlation * u1 + math.sqrt(1.0 - correlation**2) * u2)
    return w_a, w_b


def labels(rng: np.random.RandomState, linear: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = linear + sum_i sin(alpha_i * linear + beta_i) + noise, for a batch."""
    sines = np.sin(linear[:, None] * alpha[None, :] + beta[None, :]).sum(axis=1)
    return linear + sines + NOISE_STD * rng.standard_normal(len(linear))


def build(
    seed: int = 0,
    n_samples: int = 4000,
    dim: int = 100,
    correlation: float = 0.5,
    scale: float = 1.0,
    n_sines: int = 10,
    sine_std: float = PARAMETER_STD,
) -> MTLData:
    """Generate the benchmark; the same seed and options give the same tensors."""
    check_options(n_samples, dim, correlation, scale, n_sines, sine_std)
    rng = np.random.RandomState(seed)
    w_a, w_b = task_weights(rng, dim, correlation, scale)
    alpha = sine_std * rng.standard_normal(n_sines)
    beta = sine_std * rng.standard_normal(n_sines)
    x = rng.standard_normal((n_samples, dim))
    y = {
        "task_a": torch.from_numpy(labels(rng, x @ w_a, alpha, beta)).float(),
        "task_b": torch.from_numpy(labels(rng, x @ w_b, alpha, beta)).float(),
    }
    x = torch.from_numpy(x).float()
    train, val, test = split_indices(n_samples, seed)
    splits = {name: Split(x[idx], {t: v[idx] for t, v in y.items()}) for name, idx in
              (("train", train), ("val", val), ("test", test))}
    tasks = {t.name: t for t in TASKS}
    stats = standardise_regression(splits, tasks)
    return MTLData("synthetic", tasks, splits["train"], splits["val"], splits["test"], "vector", stats)


def footprint(n_samples: int = 4000, dim: int = 100, correlation: float = 0.5, scale: float = 1.0,
              n_sines: int = 10, sine_std: float = PARAMETER_STD) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    check_options(n_samples, dim, correlation, scale, n_sines, sine_std)
    return n_samples, (dim,)


INFO = DATASETS.register("synthetic")(
    DatasetInfo(
        name="synthetic",
        description=(
            "Two regression tasks with a chosen correlation (Ma et al., MMoE, KDD 2018): "
            "the lower the correlation, the less sharing helps."
        ),
        tasks=TASKS,
        build=build,
        footprint=footprint,
        options={"n_samples": 4000, "dim": 100, "correlation": 0.5, "scale": 1.0, "n_sines": 10,
                 "sine_std": PARAMETER_STD},
        option_help={
            "n_samples": "Number of examples generated, split 70/15/15 into train, validation and test.",
            "dim": "Number of input features d.",
            "correlation": "Correlation p between the two tasks' weight vectors, from -1 to 1.",
            "scale": "Length c of both weight vectors.",
            "n_sines": "Number m of sine terms that make the tasks non-linear.",
            "sine_std": "Spread of the sines' alpha_i and beta_i: 0.1 leaves the tasks almost linear, 1 bends them.",
        },
        input_kind="vector",
        preprocess=None,
        image_hint="",
    )
)
