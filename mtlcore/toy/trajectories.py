"""Optimisation paths on the toy problem, through the engine's own weighting methods.

Each weighting method is the very ``Weighting`` object the engine trains
networks with (``create_weighting``). As in the authors' trainer, Adam at
lr 1e-3 moves x (and the method's own parameters, at 0.025).

Batched (the default): the five starts are one batch of independent
problems. Their points are one (5, 2) parameter (``ToyPoints``), the
"model" whose shared parameter it is; at every step the five starts'
losses and both tasks' gradients at all five points are computed together,
in closed form (``losses_and_jacobians``); *one* ``Weighting``, set up for five problems
(``setup(..., problems=5)``, for a method that ``batches_problems``), turns
them into every start's update in one call, keeping its state per start
(FAMO's logits, uncertainty's log-variances, one Nash-MTL solver per
start); and one Adam step moves all five points. Loss-weighting methods
then do their work on a (starts x tasks) loss matrix; the gradient methods
run their torchjd aggregator once per start inside that call (torchjd's
aggregators take one matrix, and do not run under ``vmap``). A method that
cannot batch (GradNorm) falls back to one ``Weighting`` per start
(``ToyPoint``), each called in turn: the per-start path, which
``batched=False`` also chooses, and which gives the same paths.

Every method pays the same batched Jacobian; what differs between them is
the method's own work, which is what ``cost per step`` measures. Several
methods stepped together (``step_together``) share one computation of the
losses and gradients at all their points, and one Adam call
(``joint_optimizer``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..weighting import WEIGHTINGS, create_weighting
from ..weighting.jacobian import TaskGradients
from .problem import (LEARNING_RATE, METHOD_LEARNING_RATE, STARTS, STEPS, TASKS, distance_to_pareto_set,
                      losses_and_gradients)

#: The authors' settings where they differ from the engine's defaults:
#: FAMO's toy runs with gamma (its logits' weight decay) 0 (``run.sh``: "we need
#: a very small gamma as the objective is not changing"), and unclipped: its
#: toy trainer's ``WeightMethod.backward`` calls ``clip_grad_norm_`` *before*
#: ``loss.backward()``, on gradients just zeroed, so its max_norm = 1 clips nothing.
TOY_OPTIONS: dict[str, dict] = {"famo": {"weight_decay": 0.0, "max_norm": 0.0}}
#: A final point this close to the Pareto set (in x) counts as having reached it.
#: Adam at lr 1e-3 jitters by about 1e-3 around where it settles; a stalled run stops
#: units away from the set.
REACHED_TOLERANCE = 0.05


class ToyPoint(torch.nn.Module):
    """One start: the 2-D point x is the model, and all of it is shared by both tasks."""

    def __init__(self, start: Sequence[float]):
        super().__init__()
        self.x = torch.nn.Parameter(torch.tensor([float(v) for v in start]))
        self.task_names = list(TASKS)

    def shared_parameters(self) -> list[torch.nn.Parameter]:
        return [self.x]

    def last_shared_layer(self) -> list[torch.nn.Parameter]:
        return [self.x]  # GradNorm's W: the point itself

    def task_parameters(self, task: str) -> list[torch.nn.Parameter]:
        return []


class ToyPoints(torch.nn.Module):
    """All starts as one batch of problems: row s of the (starts, 2) parameter is start s's point."""

    def __init__(self, starts: Sequence[Sequence[float]]):
        super().__init__()
        self.x = torch.nn.Parameter(torch.tensor([[float(v) for v in s] for s in starts]))
        self.task_names = list(TASKS)

    def shared_parameters(self) -> list[torch.nn.Parameter]:
        return [self.x]

    def last_shared_layer(self) -> list[torch.nn.Parameter]:
        return [self.x]

    def task_parameters(self, task: str) -> list[torch.nn.Parameter]:
        return []


class FilledTaskGradients(TaskGradients):
    """A ``TaskGradients`` whose rows were computed elsewhere (all starts in one batch)."""

    def __init__(self, losses: dict[str, torch.Tensor], params: Sequence[torch.Tensor], rows: list[torch.Tensor]):
        super().__init__(losses, params)
        self._rows = rows


def toy_methods() -> list[str]:
    """Every registered method that can run on the toy (all of them: its one parameter is shared)."""
    return WEIGHTINGS.names()


def batches(method: str) -> bool:
    """Can ``method`` take the five starts as one batch of problems (one call per step)?"""
    return bool(WEIGHTINGS.get(method).batches_problems)


class ToyOptimisation:
    """One weighting method from every start, stepped together.

    ``batched``: one ``Weighting`` for all starts (None: when the method
    ``batches_problems``); False: one per start, called in turn.
    """

    def __init__(self, method: str, starts: Sequence[Sequence[float]] = STARTS, seed: int = 0,
                 options: dict | None = None, batched: bool | None = None):
        torch.manual_seed(seed)  # RLW, PCGrad and GradDrop draw random numbers
        self.method = method
        self.batched = batches(method) if batched is None else bool(batched)
        if self.batched and not batches(method):
            raise ValueError(f"{method} cannot take the starts as one batch; use batched=False.")
        settings = dict(TOY_OPTIONS.get(method, {}), **(options or {}))
        self.n_starts = len(starts)
        if self.batched:
            self.model = ToyPoints(starts)
            self.weightings = [create_weighting(method, **settings)]
            self.weightings[0].setup(list(TASKS), {t: 1.0 for t in TASKS}, self.model, problems=self.n_starts)
            points = [self.model.x]
        else:
            self.points_alone = [ToyPoint(s) for s in starts]
            self.weightings = [create_weighting(method, **settings) for _ in starts]
            for weighting, point in zip(self.weightings, self.points_alone):
                weighting.setup(list(TASKS), {t: 1.0 for t in TASKS}, point)
            points = [p.x for p in self.points_alone]
        groups = [{"params": points, "lr": LEARNING_RATE}]
        own = [q for w in self.weightings for q in w.parameters()]
        if own:
            groups.append({"params": own, "lr": METHOD_LEARNING_RATE})
        self.optimizer = torch.optim.Adam(groups, fused=True)  # one kernel for all five points
        self.stepped = [p for group in groups for p in group["params"]]  # what the optimiser moves
        self.no_regulariser = torch.zeros(())
        self.steps_done = 0
        self.random_state = torch.get_rng_state()  # its own draws when stepped beside other methods

    @property
    def weighting(self):
        """The ``Weighting`` of a batched run (the only one); of start 0 for a per-start run."""
        return self.weightings[0]

    def positions(self) -> np.ndarray:
        """Where the starts are now: (starts, 2)."""
        if self.batched:
            return self.model.x.detach().numpy().copy()
        return torch.stack([p.x.detach() for p in self.points_alone]).numpy().copy()

    def gradient(self) -> np.ndarray:
        """What the method last handed the optimiser, per start: (starts, 2) (zeros where nothing)."""
        params = [self.model.x] if self.batched else [p.x for p in self.points_alone]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in params]
        return (grads[0] if self.batched else torch.stack(grads)).double().numpy().copy()

    def step(self) -> None:
        """One update of every start: the method fills ``.grad``, then one Adam step.

        The same step as ``step_from`` (its own random draws included), with the losses computed here.
        """
        self.step_from(*self.batched_losses())

    def points(self) -> torch.Tensor:
        """Every start's point, (starts, 2), differentiable (one parameter, or the per-start ones stacked)."""
        return self.model.x if self.batched else torch.stack([p.x for p in self.points_alone])

    def batched_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every start's losses (starts, tasks), graph alive, and both tasks' gradients at every start
        (tasks, starts, 2), in closed form."""
        return losses_and_jacobians(self.points())

    def step_gradient(self) -> None:
        """Fill each start's ``x.grad`` with its method's update (nothing moves yet)."""
        self.fill_gradient(*self.batched_losses())

    def fill_gradient(self, losses: torch.Tensor, jacobians: torch.Tensor) -> None:
        """Hand this step's losses (starts, tasks) and gradients (tasks, starts, 2) to the method, which fills
        each start's ``x.grad``: one call for every start, or one per start."""
        self.clear_gradient()
        if self.batched:
            batch_losses = {t: losses[:, k] for k, t in enumerate(TASKS)}
            gradients = FilledTaskGradients(batch_losses, [self.model.x], [jacobians])
            self.weightings[0].backward(batch_losses, self.model, self.no_regulariser, gradients)
            return
        for s, (weighting, point) in enumerate(zip(self.weightings, self.points_alone)):
            start_losses = {t: losses[s, k] for k, t in enumerate(TASKS)}
            gradients = FilledTaskGradients(start_losses, [point.x], [jacobians[:, s]])
            weighting.backward(start_losses, point, self.no_regulariser, gradients)

    def clear_gradient(self) -> None:
        """No gradient on what the optimiser moves (``zero_grad(set_to_none=True)`` costs 20 microseconds)."""
        for p in self.stepped:
            p.grad = None

    def fill_from(self, losses: torch.Tensor, jacobians: torch.Tensor) -> None:
        """``fill_gradient``, with the method's random draws (RLW, PCGrad, GradDrop) taken from its own
        generator state, so that its path is the one it takes alone, whichever methods step beside it (or
        whatever else draws in between)."""
        outside = torch.get_rng_state()
        torch.set_rng_state(self.random_state)
        try:
            self.fill_gradient(losses, jacobians)
        finally:
            self.random_state = torch.get_rng_state()
            torch.set_rng_state(outside)

    def step_from(self, losses: torch.Tensor, jacobians: torch.Tensor) -> None:
        """One update of every start from this step's losses and gradients, computed here (``step``) or for
        several methods at once (``step_together``)."""
        self.fill_from(losses, jacobians)
        self.optimizer.step()
        self.steps_done += 1

    def run(self, steps: int, record_every: int = 1) -> np.ndarray:
        """Take ``steps`` steps; the positions every ``record_every`` steps, (recorded, starts, 2)."""
        recorded = []
        for k in range(steps):
            if k % record_every == 0:
                recorded.append(self.positions())
            self.step()
        return np.stack(recorded) if recorded else np.empty((0, self.n_starts, 2))


def losses_and_jacobians(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The losses at every point of ``x`` (points, tasks), graph alive, and both tasks' gradients there
    (tasks, points, 2), in closed form (``problem.losses_and_gradients``).

    The losses stay differentiable in x (``ClosedFormLosses``): most methods
    build their update from the gradients handed to them, but GradNorm
    differentiates the losses itself.
    """
    return ClosedFormLosses.apply(x)


class ClosedFormLosses(torch.autograd.Function):
    """The toy's losses as one autograd operation whose backward is the closed-form Jacobian.

    Nothing is differentiated unless someone asks: the forward computes the
    losses and the gradients together, and a backward pass (GradNorm's) only
    multiplies the saved gradients by the incoming ones.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor):
        losses, gradients = losses_and_gradients(x.detach().cpu().numpy())
        losses = torch.from_numpy(losses).to(dtype=x.dtype, device=x.device)
        gradients = torch.from_numpy(gradients).to(dtype=x.dtype, device=x.device)
        ctx.save_for_backward(gradients)
        ctx.mark_non_differentiable(gradients)
        return losses, gradients

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor, grad_gradients: torch.Tensor):
        (gradients,) = ctx.saved_tensors  # (tasks, points, 2)
        return (grad_losses.t().unsqueeze(-1) * gradients).sum(dim=0)


def step_together(runs: Sequence[ToyOptimisation], seconds: list[float] | None = None,
                  optimizer: torch.optim.Optimizer | None = None) -> list[Exception | None]:
    """One step of several methods' optimisations, with the losses and gradients at all their points computed at once.

    Each method's update is its own; what is shared is the toy's losses and
    gradients at every point, which cost as much for thirty points as for
    five (the tiny operations are paid per call, not per point), and, given
    ``optimizer`` (``joint_optimizer(runs)``), one Adam call for every run
    instead of one each. A method that fails gives its exception back (and
    does not move); the others step. ``seconds``: each run's share of the
    CPU time is added to it: the shared losses in full (what the run would
    pay alone), its own update, and its share of the joint Adam call.
    """
    begin = time.thread_time()
    sizes = [run.n_starts for run in runs]
    losses, jacobians = losses_and_jacobians(torch.cat([run.points() for run in runs]))
    losses, jacobians = losses.split(sizes), jacobians.split(sizes, dim=1)
    spent = [time.thread_time() - begin] * len(runs)
    errors: list[Exception | None] = []
    for k, run in enumerate(runs):
        begin = time.thread_time()
        try:
            run.fill_from(losses[k], jacobians[k])
            errors.append(None)
        except Exception as error:  # a solver failing mid-way: the others go on
            run.clear_gradient()  # and it does not move
            errors.append(error)
        spent[k] += time.thread_time() - begin
    stepped = [k for k, error in enumerate(errors) if error is None]
    begin = time.thread_time()
    for adam in [optimizer] if optimizer is not None else [runs[k].optimizer for k in stepped]:
        adam.step()  # a run that failed has no gradient: the joint Adam leaves it where it is
    for k in stepped:
        runs[k].steps_done += 1
        spent[k] += (time.thread_time() - begin) / len(stepped)
    if seconds is not None:
        for k, more in enumerate(spent):
            seconds[k] += more
    return errors


def joint_optimizer(runs: Sequence[ToyOptimisation]) -> torch.optim.Optimizer:
    """One Adam for several runs' parameters, which steps each of them as its own optimiser would.

    Adam acts on every number alone, and every run's Adam has the same
    settings, so one fused call over all their parameters (one group per
    learning rate) gives each run the step its own gives, for the price of
    one call: about 50 microseconds on the CPU whatever the size, as much as
    equal weights' whole update. The runs' own optimisers stay usable: they
    and the joint one share one state table (each parameter's moments and
    step count).
    """
    by_rate: dict[float, list[torch.Tensor]] = {}
    for run in runs:
        for group in run.optimizer.param_groups:
            by_rate.setdefault(group["lr"], []).extend(group["params"])
    joint = torch.optim.Adam([{"params": params, "lr": lr} for lr, params in by_rate.items()], fused=True)
    for run in runs:
        joint.state.update(run.optimizer.state)
        run.optimizer.state = joint.state
    return joint


@dataclass
class Trajectories:
    """One method's paths from every start: points (starts, recorded, 2) and what they cost.

    ``seconds``: the time spent on the ``steps`` so far (wall-clock in
    ``trajectories``; CPU time of the computing thread in ``live.py``).
    """

    method: str
    points: np.ndarray
    steps: int
    seconds: float
    finished: bool = False
    error: str | None = None
    starts: tuple = field(default=STARTS)

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)

    @property
    def final_points(self) -> np.ndarray:
        return self.points[:, -1, :]

    def reached(self, tolerance: float = REACHED_TOLERANCE) -> np.ndarray:
        """For each start: did its last point end within ``tolerance`` of the Pareto set?"""
        return distance_to_pareto_set(self.final_points) <= tolerance

    def to_dict(self) -> dict:
        return {"method": self.method, "steps": self.steps, "seconds": self.seconds, "finished": self.finished,
                "error": self.error, "final_points": self.final_points.tolist(),
                "reached": self.reached().tolist() if self.steps else []}


def trajectories(method: str, steps: int = STEPS, record_every: int = 100, chunk: int = 1000,
                 seed: int = 0, starts: Sequence[Sequence[float]] = STARTS,
                 should_stop: Callable[[], bool] = lambda: False,
                 run: ToyOptimisation | None = None) -> Iterator[Trajectories]:
    """Run ``method`` from every start; yield the paths so far after every ``chunk`` steps.

    The last one yielded has ``finished=True`` (unless ``should_stop`` said
    stop first). Points are recorded every ``record_every`` steps, and the
    final position is always the last point. ``run``: the optimisation to
    step (default a new one), for a caller that goes on with it afterwards.
    """
    run = ToyOptimisation(method, starts, seed=seed) if run is None else run
    pieces: list[np.ndarray] = []
    seconds = 0.0
    chunk = max(record_every, chunk - chunk % record_every)
    while run.steps_done < steps and not should_stop():
        begin = time.perf_counter()
        pieces.append(run.run(min(chunk, steps - run.steps_done), record_every))
        seconds += time.perf_counter() - begin
        done = run.steps_done >= steps
        points = np.concatenate(pieces + [run.positions()[None]], axis=0).transpose(1, 0, 2)
        yield Trajectories(method, points, run.steps_done, seconds, finished=done, starts=tuple(starts))
