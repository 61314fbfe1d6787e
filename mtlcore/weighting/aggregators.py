"""The gradient-combination methods: one torchjd aggregator each.

Each class below only names its aggregator and its options; everything else
is ``AggregatedGradient``. J is the T x n Jacobian of the (slider-weighted)
task losses on the shared parameters, g_t its rows, and d the update.

CAGrad needs ``cvxpy`` and Nash-MTL ``cvxpy`` and ``ecos`` (torchjd's
``cagrad`` and ``nash_mtl`` extras); UPGrad needs ``qpsolvers`` and
``quadprog`` (``quadprog_projector``). A method whose solver is not
installed is not registered, so the app never offers it.
"""
from __future__ import annotations

import warnings
from importlib.util import find_spec

from .aggregated import AggregatedGradient
from .base import WEIGHTINGS

# torchjd is imported inside ``make_aggregator``, when a run that uses it
# starts: importing torchjd.aggregation loads cvxpy, about a second that a
# worker would otherwise pay at every start, before its first run of any kind.


# What each gradient-combination method needs installed, whether or not it is:
# read by ``python -m mtlcore doctor`` to say which package enables which method.
REQUIRED_PACKAGES: dict[str, tuple[str, ...]] = {}


def register_if_available(name: str, solvers: tuple[str, ...] = ()):
    """Register the class under ``name`` if torchjd and the ``solvers`` it needs are installed.

    ``solvers``: the packages torchjd itself checks for (its ``_REQUIRED_DEPS``);
    looked up with ``find_spec``, which finds without importing.
    """

    def decorator(cls):
        REQUIRED_PACKAGES[name] = ("torchjd", *solvers)
        if any(find_spec(package) is None for package in ("torchjd", *solvers)):
            return cls  # an optional solver is missing: leave the method out
        return WEIGHTINGS.register(name)(cls)

    return decorator


@register_if_available("mgda")
class MGDAGradient(AggregatedGradient):
    """MGDA (Sener & Koltun, NeurIPS 2018, "Multi-Task Learning as Multi-Objective Optimization").

    d = the minimum-norm point of the convex hull of the rows:
    d = J^T alpha,  alpha = argmin_{alpha >= 0, sum alpha = 1} ||J^T alpha||^2
    (Frank-Wolfe). Every task's loss decreases (or d = 0 at a Pareto point).
    """

    summary = "Minimum-norm combination: a step that lowers every task's loss (Sener & Koltun 2018)."

    def __init__(self, *, epsilon: float = 0.001, max_iters: int = 100):
        super().__init__(epsilon=epsilon, max_iters=max_iters)
        self.epsilon, self.max_iters = float(epsilon), int(max_iters)

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import MGDA

        return MGDA(epsilon=self.epsilon, max_iters=self.max_iters)


@register_if_available("pcgrad")
class PCGradGradient(AggregatedGradient):
    """PCGrad (Yu et al., NeurIPS 2020, "Gradient Surgery for Multi-Task Learning").

    For each g_i and each other g_j in random order: if g_i . g_j < 0,
    g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j  (remove the conflicting part);
    d = sum_i g_i.
    """

    summary = "Projects away the part of each gradient that conflicts with another (Yu et al. 2020)."

    def __init__(self):
        super().__init__()

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import PCGrad

        return PCGrad()


@register_if_available("upgrad", solvers=("numpy", "qpsolvers", "quadprog"))
class UPGradGradient(AggregatedGradient):
    """UPGrad (Quinton & Rey, 2024, "Jacobian Descent for Multi-Objective Optimization").

    Project each row onto the dual cone of all rows (the directions that
    conflict with no task) and average: d = (1/T) sum_i pi_J(g_i). d never
    conflicts with any g_t, and its size follows the gradients' sizes.
    """

    summary = "Projects each gradient onto the directions no task objects to, then averages (Quinton & Rey 2024)."

    def __init__(self):
        super().__init__()

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import UPGrad

        return UPGrad()


@register_if_available("cagrad", solvers=("numpy", "cvxpy", "clarabel"))
class CAGradGradient(AggregatedGradient):
    """CAGrad (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021, "Conflict-Averse Gradient Descent").

    d maximises the worst task's improvement min_t g_t . d within a ball
    around the mean gradient g0: ||d - g0|| <= c ||g0||. c = 0 is plain
    averaging; larger c favours the worst-off task.
    """

    summary = "Stays near the average gradient while helping the worst-off task most (Liu et al. 2021)."
    #: torchjd normalises J to unit Frobenius norm and returns a zero update when ||J||^2 or the normalised
    #: ||g_w|| is under ``norm_eps`` (1e-4 by default), taking the point for Pareto-stationary. The paper's
    #: d = g0 + (sqrt(phi) / ||g_w||) g_w (and the authors' code, which adds 1e-8 to ||g_w||) has no such
    #: cut-off: with the default, CAGrad stopped dead on the toy where one task's gradient is 10^-5 of the
    #: other's (from (9, 9), the start where Adam stalls) and on any Jacobian with ||J||^2 < 1e-4.
    norm_eps = 1e-12

    def __init__(self, *, c: float = 0.4):
        super().__init__(c=c)
        self.c = float(c)
        if not self.c >= 0:
            raise ValueError(f"c must be 0 or more, got {c}.")

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import CAGrad

        return CAGrad(c=self.c, norm_eps=self.norm_eps)


@register_if_available("imtl_g")
class IMTLGGradient(AggregatedGradient):
    """IMTL-G (Liu et al., ICLR 2021, "Towards Impartial Multi-task Learning").

    d = J^T alpha with the alpha (summing to 1) for which d has the *same
    projection* onto every task's unit gradient g_t / ||g_t||: no task is
    favoured, whatever the gradients' sizes.
    """

    summary = "Finds the step whose projection on every task's gradient direction is equal (Liu et al. 2021)."

    def __init__(self):
        super().__init__()

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import IMTLG

        return IMTLG()


@register_if_available("aligned_mtl")
class AlignedMTLGradient(AggregatedGradient):
    """Aligned-MTL (Senushkin et al., CVPR 2023, "Independent Component Alignment for MTL").

    Make the rows orthogonal and of equal size (a balance transformation of
    the Gram matrix J J^T, scaled by its smallest eigenvalue), then average:
    a well-conditioned linear system, with no dominating task.
    """

    summary = "Aligns the gradients into an orthogonal, equal-sized set before averaging (Senushkin et al. 2023)."

    def __init__(self, *, scale_mode: str = "min"):
        super().__init__(scale_mode=scale_mode)
        if scale_mode not in ("min", "median", "rmse"):
            raise ValueError(f"scale_mode must be 'min', 'median' or 'rmse', got {scale_mode!r}.")
        self.scale_mode = scale_mode

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import AlignedMTL

        return AlignedMTL(scale_mode=self.scale_mode)


@register_if_available("graddrop")
class GradDropGradient(AggregatedGradient):
    """GradDrop (Chen et al., NeurIPS 2020, "Just Pick a Sign").

    For each coordinate, the sign purity P = (1 + sum_t g_t / sum_t |g_t|) / 2;
    keep all positive entries with probability P, otherwise all negative
    ones: d = sum_t mask_t * g_t. Conflicting signs are resolved at random.
    """

    summary = "Keeps, coordinate by coordinate, only the gradients of one sign, chosen at random (Chen et al. 2020)."

    def __init__(self):
        super().__init__()

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import GradDrop

        return GradDrop()


@register_if_available("nash_mtl", solvers=("numpy", "cvxpy", "ecos"))
class NashMTLGradient(AggregatedGradient):
    """Nash-MTL (Navon et al., ICML 2022, "Multi-Task Learning as a Bargaining Game").

    d = J^T alpha with the Nash bargaining solution (J J^T) alpha = 1 / alpha
    (element-wise): each task's gain from d is inversely proportional to its
    weight. The step is clipped to norm ``max_norm``.
    """

    summary = "Treats the tasks as players bargaining for a shared step (Navon et al. 2022)."

    def __init__(self, *, max_norm: float = 1.0, update_weights_every: int = 1, optim_niter: int = 20):
        super().__init__(max_norm=max_norm, update_weights_every=update_weights_every, optim_niter=optim_niter)
        self.max_norm, self.update_weights_every, self.optim_niter = float(max_norm), int(update_weights_every), int(optim_niter)
        if self.max_norm < 0 or self.update_weights_every < 1 or self.optim_niter < 1:
            raise ValueError("max_norm must be 0 or more, update_weights_every and optim_niter 1 or more.")

    def combine(self, jacobian, aggregator=None):
        # torchjd re-solves a cvxpy problem every step, and cvxpy warns each time
        # that the problem is not "DPP" (so no faster after the first): harmless noise.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are solving a parameterized problem that is not DPP")
            return super().combine(jacobian, aggregator)

    def make_aggregator(self, n_tasks):
        from torchjd.aggregation import NashMTL

        return NashMTL(n_tasks=n_tasks, max_norm=self.max_norm,
                       update_weights_every=self.update_weights_every, optim_niter=self.optim_niter)
