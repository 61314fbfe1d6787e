"""How a multi-task model turns its per-task losses into one update.

Two families share one interface, ``Weighting``:

* loss weighting (``LossWeighting``): choose a weight w_t per task and
  back-propagate  sum_t u_t * w_t * L_t + extra,  where u_t is the user's
  slider weight. ``static`` keeps w_t = 1, ``uncertainty`` learns it, ...
* gradient combination: compute each task's gradient on the shared
  parameters and combine them (MGDA, PCGrad, UPGrad, ... via torchjd).

The engine only ever calls ``setup``, ``backward``, ``after_step`` (when
the method ``wants_losses_after_step``), ``end_epoch``, ``parameters`` and
``state_dict``; it never asks which method it holds.
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch

from ..registry import Registry
from .jacobian import TaskGradients, backward_objective


class Weighting:
    """Base class of every weighting / gradient-combination method.

    Constructors store their keyword options and do no work (scikit-learn
    style); ``setup`` receives the tasks and the model when training starts.
    """

    #: One line for the app's selector.
    summary: ClassVar[str] = ""
    #: True when the method computes each task's gradient separately.
    needs_task_gradients: ClassVar[bool] = False
    #: True when the method works on the gradients of shared parameters, so
    #: it needs an architecture that has some (not soft sharing) and 2+ tasks.
    needs_shared_parameters: ClassVar[bool] = False
    #: True when the method wants the batch's losses again after the update
    #: (``after_step``): the engine then pays one more forward pass per step.
    wants_losses_after_step: ClassVar[bool] = False
    #: True when the slider weights u_t may change while it trains (live steering,
    #: ``set_task_weights``): the method uses them as they are and adapts no weights
    #: of its own to the training, which would undo a change.
    steerable_weights: ClassVar[bool] = False
    #: True when ``setup(..., problems=B)`` makes it solve B independent problems at once: each
    #: loss is then a vector of B (one per problem, problem b's depending on its own slice of
    #: the parameters alone), the method's own state gets a leading dimension B, and one
    #: ``backward`` fills every problem's gradient as B separate calls would (the toy's five starts).
    batches_problems: ClassVar[bool] = False

    def __init__(self, **options: Any):
        self.options = options
        self.tasks: list[str] = []
        self.user_weights: dict[str, float] = {}
        self.kinds: dict[str, str] = {}
        self.problems: int | None = None
        self.batch_shape: tuple[int, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({args})"

    # ----- lifecycle -----------------------------------------------------
    def setup(self, tasks: list[str], user_weights: dict[str, float], model: torch.nn.Module,
              kinds: dict[str, str] | None = None, problems: int | None = None) -> None:
        """Called once before training: the tasks, their slider weights, the model, each task's kind.

        ``kinds`` maps a task to ``classification`` or ``regression`` (the
        engine passes them; None: every task counts as regression).
        ``problems``: B independent problems at once (only for a method that
        ``batches_problems``; None, the engine's case: one).
        """
        if problems is not None and not self.batches_problems:
            raise ValueError(f"{type(self).__name__} solves one problem at a time; set it up once per problem.")
        self.problems = problems
        self.batch_shape = () if problems is None else (int(problems),)
        self.tasks = list(tasks)
        self.user_weights = {t: float(user_weights.get(t, 1.0)) for t in tasks}
        self.kinds = {t: (kinds or {}).get(t, "regression") for t in tasks}

    def set_task_weights(self, weights: dict[str, float]) -> None:
        """New slider weights u_t from the next step on (live steering: mtlcore.runs.steering).

        Only for a method that says it is ``steerable_weights``; ValueError otherwise.
        """
        if not self.steerable_weights:
            raise ValueError(f"{type(self).__name__} adapts the task weights itself; its sliders cannot be steered.")
        unknown = set(weights) - set(self.tasks)
        if unknown:
            raise ValueError(f"No task {sorted(unknown)[0]!r} to weigh; this method weighs {', '.join(self.tasks)}.")
        self.user_weights.update({t: float(w) for t, w in weights.items()})

    def parameters(self) -> list[torch.Tensor]:
        """Learnable parameters of the method itself (optimised with the model)."""
        return []

    def backward(
        self, losses: dict[str, torch.Tensor], model: torch.nn.Module, extra: torch.Tensor,
        gradients: TaskGradients | None = None,
    ) -> dict[str, float]:
        """Fill ``.grad`` of the model's parameters from ``losses``.

        ``extra`` is the sum of regularisers (L1, soft-sharing penalty) to add
        to every update. ``gradients``: the step's per-task gradients, shared
        with the diagnostics (``TaskGradients``); when they are already
        computed, reuse them rather than back-propagating again. Returns the
        effective weight of each task, for logging.
        """
        raise NotImplementedError

    def after_step(self, losses: dict[str, torch.Tensor]) -> None:
        """Called after the optimiser's step, when ``wants_losses_after_step``, with the same
        batch's losses at the updated parameters (no graph)."""

    def end_epoch(self, epoch: int, train_losses: dict[str, float]) -> None:
        """Called after each epoch with its mean training loss per task."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    @classmethod
    def incompatibility(cls, config: Any) -> str | None:
        """A sentence saying why ``config`` cannot use this method, or None.

        Checks the method's options (unknown names, bad values) and, for a
        method that ``needs_shared_parameters``, the architecture and the
        number of tasks. Subclasses may add their own checks.
        """
        name = config.weighting.method
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "options")]
        for key in config.weighting.options:
            if key not in accepted:
                valid = ", ".join(accepted) if accepted else "none"
                return f"Weighting method {name} has no option {key!r} (weighting.{key}); its options are: {valid}."
        try:
            cls(**config.weighting.options)
        except (TypeError, ValueError) as error:
            return f"weighting.method={name}: {error}"
        if not cls.needs_shared_parameters:
            return None
        if len(config.tasks) < 2:
            return (f"{name} balances the gradients of several tasks, and this run trains one task; "
                    "add tasks or choose static.")
        from ..models import ARCHITECTURES  # here: the models import this package's siblings

        arch = config.model.arch
        if not ARCHITECTURES.get(arch).has_shared_parameters:
            return (f"{name} needs the tasks' gradients on shared parameters, and {arch} sharing "
                    f"(model.arch={arch}) has none; choose hard, cross_stitch or mmoe, "
                    "or a loss-weighting method such as uncertainty or dwa.")
        return None


class LossWeighting(Weighting):
    """A method that only chooses per-task weights w_t for the summed loss."""

    def weights(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | float]:
        """The method's weight w_t of each task for this step."""
        raise NotImplementedError

    def objective(self, losses: dict[str, torch.Tensor], weights: dict[str, torch.Tensor | float],
                  extra: torch.Tensor | float) -> torch.Tensor:
        """The number to back-propagate: extra + sum_t u_t * w_t * L_t.

        Written to skip what changes no gradient (a factor of exactly 1, an
        ``extra`` that is a constant): on a tiny model every operation costs
        about as much as a layer.
        """
        terms = [times(self.user_weights[t] * weights[t], losses[t]) for t in self.tasks]
        total = summed(sum(terms[1:], terms[0]))
        return total + extra if isinstance(extra, torch.Tensor) and extra.requires_grad else total

    def backward(self, losses, model, extra, gradients=None):
        weights = self.weights(losses)
        backward_objective(lambda losses: self.objective(losses, weights, 0.0), losses, extra, gradients,
                           closed_form=lambda: self.closed_form(losses, weights))
        return {t: logged(self.user_weights[t], weights[t]) for t in self.tasks}

    def closed_form(self, losses: dict[str, torch.Tensor], weights: dict[str, torch.Tensor | float]
                    ) -> tuple[dict, list[tuple[torch.Tensor, torch.Tensor]]] | None:
        """The objective's derivatives without autograd, for an update built from computed task gradients:
        ({task: d objective / d L_t}, [(own parameter, d objective / d it)]), or None to let autograd find them.

        This class's objective with weights that learn nothing through it: u_t * w_t, and no parameters of its
        own. A method with an objective of its own says its own (uncertainty weighting), or None. On the toy
        problem the backward pass this saves was half of a step of equal weights.
        """
        if type(self).objective is not LossWeighting.objective:
            return None
        if any(isinstance(w, torch.Tensor) and w.requires_grad for w in weights.values()):
            return None
        return {t: self.user_weights[t] * weights[t] for t in self.tasks}, []


def summed(total: torch.Tensor) -> torch.Tensor:
    """One number to back-propagate: a batch of independent problems' objectives (``problems``) is summed,
    which gives each problem's parameters its own objective's gradient, since no other depends on them."""
    return total if total.dim() == 0 else total.sum()


def logged(slider: float, weight: torch.Tensor | float) -> float | list[float]:
    """u_t * w_t as a number, or one per problem when ``w_t`` has a batch dimension."""
    if isinstance(weight, torch.Tensor) and weight.dim() > 0:
        return (slider * weight.detach()).tolist()
    return slider * as_float(weight)


def times(factor: torch.Tensor | float, loss: torch.Tensor) -> torch.Tensor:
    """factor * loss, without the multiplication when the factor is the number 1."""
    return loss if isinstance(factor, (int, float)) and factor == 1 else factor * loss


def as_float(weight: torch.Tensor | float) -> float:
    return float(weight) if isinstance(weight, (int, float)) else float(weight.detach())


WEIGHTINGS: Registry[type[Weighting]] = Registry("weighting method")


def create_weighting(name: str, **options: Any) -> Weighting:
    """``create_weighting("dwa", temperature=2.0)``; unknown names list valid ones."""
    return WEIGHTINGS.get(name)(**options)
