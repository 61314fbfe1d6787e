"""Loss-weighting and gradient-combination methods, registered by name.

    >>> from mtlcore.weighting import WEIGHTINGS, create_weighting
    >>> WEIGHTINGS.names()
    ['static', 'equal', 'uncertainty', 'dwa', 'gradnorm', 'rlw', 'famo', 'mgda', ...]

Loss weighting (one backward pass of sum_t w_t L_t):
    static, equal, uncertainty, dwa, rlw, famo, gradnorm (learns w_t from
    per-task gradient norms on one shared layer)
Gradient combination on the shared parameters (torchjd aggregators):
    mgda, pcgrad, upgrad, cagrad, imtl_g, aligned_mtl, graddrop, nash_mtl
"""
from .aggregated import AggregatedGradient
from .base import WEIGHTINGS, LossWeighting, Weighting, create_weighting

# Importing the modules registers the methods (in the order the app lists them).
from . import static, uncertainty, dwa, gradnorm, rlw, famo  # noqa: F401
from . import aggregators  # noqa: F401

__all__ = ["WEIGHTINGS", "AggregatedGradient", "LossWeighting", "Weighting", "create_weighting"]
