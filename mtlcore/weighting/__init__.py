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

__all__ = ["WEIGHTINGS", "AggregatedGradient", "LossWeighting", "Weighting", "create_weighting", "weighting_problem"]


def weighting_problem(config) -> str | None:
    """What is wrong with ``config``'s weighting part, in one sentence; None when nothing is.

    The method must be registered; then unknown options, bad values and
    method/architecture pairs that make no sense are for the method itself to
    say (``incompatibility``), since its sentence names the options it accepts.
    """
    name = config.weighting.method
    if name not in WEIGHTINGS:
        return f"Unknown weighting method {name!r} (weighting.method); choose one of: {', '.join(WEIGHTINGS.names())}."
    method = WEIGHTINGS.get(name)
    problem = method.incompatibility(config)
    if problem:
        return problem
    try:  # constructors store and check their options, nothing more (scikit-learn's rule)
        method(**config.weighting.options)
    except (TypeError, ValueError) as error:
        return f"The options of weighting.method={name} are not accepted: {error}"
    return None
