"""The two-objective toy problem of Liu et al. (CAGrad, NeurIPS 2021).

Two losses over a 2-D parameter x = (x1, x2), copied from the authors' code
(github.com/Cranial-XIX/CAGrad, ``toy.py``) in the version that Navon et al.
(Nash-MTL, ICML 2022) and Liu et al. (FAMO, NeurIPS 2023) reuse in their
``experiments/toy``: the first loss is scaled by 0.1, so that the two
gradients differ in size as well as in direction, and five starting points.

Above the x1 axis (x2 > 0) each loss is a log-valley; below it each is a
quadratic bowl centred at x1 = +7 (loss 1) or x1 = -7 (loss 2), pulled
towards x2 = -8 and deepened by tanh(-x2/2). The two are glued by the gates
c1 = max(tanh(x2/2), 0) and c2 = max(tanh(-x2/2), 0). The Pareto set, where
no step lowers both losses, is the arc between the two bowls' minima:
-7 <= x1 <= 7, x2 from about -8.355 (at x1 = 0) to -8.434 (at x1 = +-7);
the authors draw it as the line x2 = -8.3552.

The losses given to the weighting methods are f_t - floor_t, with FAMO's
lower bounds floor = (-21 * 0.1, -21) (its toy trainer's
``set_min_losses``): the same gradients, but positive values, which
log-based methods (FAMO) and uncertainty weighting need. Plots show f_t.

Everything here takes and returns torch tensors of shape (..., 2), any
number of points at once, except ``losses_and_gradients``: the losses and
both gradients in closed form, in NumPy, which the playground's every step
uses (eight times cheaper than autograd on its 30 points).
"""
from __future__ import annotations

import numpy as np
import torch

#: The five starting points of Nash-MTL's and FAMO's toy (CAGrad used the first and third, and (-8.5, -5)).
STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
#: The factor on the first loss (the trainers' ``--scale`` default, 1e-1).
FIRST_LOSS_SCALE = 0.1
#: The authors' optimiser: Adam at this learning rate, for this many steps (``n_epochs=50000``).
LEARNING_RATE = 1e-3
STEPS = 50_000
#: FAMO's toy trainer gives the method's own parameters (FAMO's logits aside) this learning rate.
METHOD_LEARNING_RATE = 0.025
#: The names of the two tasks, as the weighting methods see them.
TASKS = ("loss_1", "loss_2")
#: Where the authors clamp the log's argument.
LOWER = 0.000005
#: FAMO's ``set_min_losses([-21 * scale, -21])``: every f_t stays above it.
LOSS_FLOOR = (-21.0 * FIRST_LOSS_SCALE, -21.0)
#: The square the authors plot: -11 <= x1, x2 <= 11 (``xl=11``).
EXTENT = 11.0


def clamp_min(t: torch.Tensor, low: float) -> torch.Tensor:
    """max(t, low) with gradient 1 where t == low, as ``torch.clamp`` had when the authors wrote the toy.

    PyTorch gave clamp the subgradient 1 at its bound from 2018 (pull request
    7049) until version 2.13 made it 0. The toy starts at (0, 0), exactly on
    the gates' bound tanh(x2 / 2) = 0: with the newer rule both gradients
    there are zero, and every method would sit at (0, 0) forever. ``where``
    keeps the authors' rule on any version.
    """
    return torch.where(t >= low, t, torch.full_like(t, low))


def toy_objectives(x: torch.Tensor, scale: float = FIRST_LOSS_SCALE) -> torch.Tensor:
    """(f1, f2) at every point of x (..., 2): the authors' ``batch_forward``, shape (..., 2)."""
    x1, x2 = x[..., 0], x[..., 1]
    f1 = clamp_min((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOWER).log() + 6
    f2 = clamp_min((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOWER).log() + 6
    c1 = clamp_min(torch.tanh(x2 * 0.5), 0.0)
    f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = clamp_min(torch.tanh(-x2 * 0.5), 0.0)
    f1 = (f1 * c1 + f1_sq * c2) * scale
    f2 = f2 * c1 + f2_sq * c2
    return torch.stack([f1, f2], dim=-1)


def toy_losses(x: torch.Tensor) -> torch.Tensor:
    """f_t - floor_t: what the weighting methods minimise (same gradients, always positive); every step computes
    it in closed form (``losses_and_gradients``), which is tested against this."""
    return toy_objectives(x) - torch.tensor(LOSS_FLOOR, dtype=x.dtype, device=x.device)


def losses_and_gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``toy_losses`` at every point of x (points, 2), and both tasks' gradients there, in closed form.

    Returns losses (points, tasks) and gradients (tasks, points, 2), the
    numbers autograd gives through ``toy_losses`` (to about 1e-13 in float64;
    ``tests/test_toy.py`` checks it), with the same rules at the kinks:
    |a| has slope sign(a) (0 at a = 0), and a clamp passes the gradient
    where its argument is at or above the bound (``clamp_min``), so that
    the start (0, 0) moves as in the authors' code. Why by hand: a step of
    the playground is a few dozen operations on 30 numbers, where each
    PyTorch call costs more than the arithmetic; in NumPy the losses and
    gradients of every point take about 50 microseconds, autograd about 460.

    With t = tanh(x2) and h = tanh(x2 / 2):

        a = -x1/2 - 7/2 + t,  b = -x1/2 + 7/2 - t   (the log-valleys' arguments)
        a' = (-1/2, 1 - t^2),  b' = (-1/2, t^2 - 1)
        log_k = log max(|arg|, LOWER) + 6,  d log_k = sign(arg) / |arg| * d arg
        c1 = max(h, 0),  c2 = max(-h, 0),   d h / d x2 = (1 - h^2) / 2
        sq1 = (7 - x1)^2 / 10 + (x2 + 8)^2 / 100 - 20,  sq2 = (x1 + 7)^2 / 10 + (x2 + 8)^2 / 100 - 20
        f1 = 0.1 (log_1 c1 + sq1 c2),  f2 = log_2 c1 + sq2 c2   (product rule for the gradients)
    """
    x = np.asarray(x, dtype=np.float64)
    x1, x2 = x[:, 0], x[:, 1]
    t = np.tanh(x2)
    dt = 1.0 - t * t
    a, b = -0.5 * x1 - 3.5 + t, -0.5 * x1 + 3.5 - t
    abs_a, abs_b = np.abs(a), np.abs(b)
    log_1 = np.log(np.maximum(abs_a, LOWER)) + 6
    log_2 = np.log(np.maximum(abs_b, LOWER)) + 6
    slope_1 = np.where(abs_a >= LOWER, np.sign(a) / np.maximum(abs_a, LOWER), 0.0)  # d log_1 / d a
    slope_2 = np.where(abs_b >= LOWER, np.sign(b) / np.maximum(abs_b, LOWER), 0.0)
    h = np.tanh(0.5 * x2)
    dh = 0.5 * (1.0 - h * h)
    c1, dc1 = np.maximum(h, 0.0), np.where(h >= 0, dh, 0.0)
    c2, dc2 = np.maximum(-h, 0.0), np.where(h <= 0, -dh, 0.0)
    bowl_x2, d_bowl_x2 = 0.01 * (x2 + 8) ** 2, 0.02 * (x2 + 8)
    sq_1 = (7 - x1) ** 2 / 10 + bowl_x2 - 20
    sq_2 = (x1 + 7) ** 2 / 10 + bowl_x2 - 20
    s = FIRST_LOSS_SCALE
    losses = np.stack([s * (log_1 * c1 + sq_1 * c2) - LOSS_FLOOR[0], log_2 * c1 + sq_2 * c2 - LOSS_FLOOR[1]], axis=-1)
    gradient_1 = np.stack([s * (-0.5 * c1 * slope_1 + c2 * (x1 - 7) / 5),
                           s * (c1 * slope_1 * dt + log_1 * dc1 + c2 * d_bowl_x2 + sq_1 * dc2)], axis=-1)
    gradient_2 = np.stack([-0.5 * c1 * slope_2 + c2 * (x1 + 7) / 5,
                           -c1 * slope_2 * dt + log_2 * dc1 + c2 * d_bowl_x2 + sq_2 * dc2], axis=-1)
    return losses, np.stack([gradient_1, gradient_2])


def task_gradients(points) -> np.ndarray:
    """Each task's gradient at each point: array (n, 2 tasks, 2 coordinates)."""
    x = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 2)).requires_grad_()
    f = toy_objectives(x)
    rows = [torch.autograd.grad(f[:, t].sum(), x, retain_graph=True)[0] for t in range(2)]
    return torch.stack(rows, dim=1).numpy()


def objectives_at(points) -> np.ndarray:
    """(f1, f2) at each point (n, 2) as numbers, for tables and plots."""
    with torch.no_grad():
        return toy_objectives(torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 2))).numpy()


def loss_grid(n: int = 121, extent: float = EXTENT) -> dict[str, np.ndarray]:
    """Both objectives and their average on an n x n grid over [-extent, extent]^2, for contour plots."""
    axis = np.linspace(-extent, extent, n)
    x1, x2 = np.meshgrid(axis, axis)
    f = objectives_at(np.stack([x1.ravel(), x2.ravel()], axis=1)).reshape(n, n, 2)
    return {"axis": axis, "loss_1": f[..., 0], "loss_2": f[..., 1], "average": f.mean(axis=-1)}


def pareto_set(n: int = 141) -> np.ndarray:
    """n points (x1, x2) along the Pareto set, x1 from -7 to 7.

    For each x1 the Pareto point is where the two gradients point in opposite
    directions (Pareto stationarity: a convex combination of them is zero),
    found on a grid of x2 between the two bowls' minima (-8.6 to -7.9) at
    steps of 0.001, then on a grid of steps of 0.00001 around the best of
    those. (One grid of steps of 0.0001 cost 1.2 s for the 561 points of
    ``distance_to_pareto_set``, which the first chart with paths paid.)
    """
    x1 = torch.linspace(-7.0, 7.0, n, dtype=torch.float64)
    coarse = _most_opposed(x1, torch.linspace(-8.6, -7.9, 701, dtype=torch.float64).expand(n, -1))
    fine = coarse[:, None] + torch.linspace(-1e-3, 1e-3, 201, dtype=torch.float64)
    return torch.stack([x1, _most_opposed(x1, fine)], dim=1).numpy()


def _most_opposed(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """For each x1[i], the x2[i, j] where the two gradients are closest to pointing in opposite directions
    (the least |g1 x g2| among the points where g1 . g2 <= 0)."""
    grid = torch.stack(torch.broadcast_tensors(x1[:, None], x2), dim=-1).requires_grad_()
    f = toy_objectives(grid)
    g1 = torch.autograd.grad(f[..., 0].sum(), grid, retain_graph=True)[0]
    g2 = torch.autograd.grad(f[..., 1].sum(), grid)[0]
    cross = (g1[..., 0] * g2[..., 1] - g1[..., 1] * g2[..., 0]).abs()
    opposed = (g1 * g2).sum(-1) <= 0
    best = torch.where(opposed, cross, torch.full_like(cross, float("inf"))).argmin(dim=1)
    return x2.gather(1, best[:, None]).squeeze(1).detach()


_PARETO = None


def distance_to_pareto_set(points) -> np.ndarray:
    """Euclidean distance from each point (n, 2) to the Pareto set (a fine polyline)."""
    global _PARETO
    if _PARETO is None:
        _PARETO = pareto_set(561)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a, b = _PARETO[:-1], _PARETO[1:]
    ab = b - a
    t = np.clip(((p[:, None, :] - a) * ab).sum(-1) / (ab * ab).sum(-1), 0.0, 1.0)
    nearest = a + t[..., None] * ab
    return np.linalg.norm(p[:, None, :] - nearest, axis=-1).min(axis=1)
