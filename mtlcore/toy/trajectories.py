"""Optimisation paths on the toy problem, through the engine's own weighting methods.

Each start is a tiny "model" (``ToyPoint``) whose only parameter, the 2-D
point x, is its *shared parameter*; each weighting method is the very
``Weighting`` object the engine trains networks with (``create_weighting``),
one per start, so that methods with state (FAMO's logits, uncertainty's
log-variances, Nash-MTL's solver) keep it per start. As in the authors'
trainer, Adam at lr 1e-3 moves x (and the method's own parameters, at
0.025).

Batched: at every step the five starts' losses, and both tasks' gradients at
all five points, are computed together, in one graph; each method then gets
its start's losses and gradients (a ``TaskGradients`` already filled in),
turns them into an update exactly as in ``engine.py``, and one Adam step
moves all five points. Every method therefore pays the same batched
Jacobian; what differs between them is the method's own work, which is what
``cost per step`` measures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..weighting import WEIGHTINGS, create_weighting
from ..weighting.jacobian import TaskGradients
from .problem import LEARNING_RATE, METHOD_LEARNING_RATE, STARTS, STEPS, TASKS, distance_to_pareto_set, toy_losses

#: The authors' settings where they differ from the engine's defaults:
#: FAMO's toy runs with gamma (its logits' weight decay) 0 (``run.sh``: "we need
#: a very small gamma as the objective is not changing").
TOY_OPTIONS: dict[str, dict] = {"famo": {"weight_decay": 0.0}}
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


class FilledTaskGradients(TaskGradients):
    """A ``TaskGradients`` whose rows were computed elsewhere (all starts in one batch)."""

    def __init__(self, losses: dict[str, torch.Tensor], params: Sequence[torch.Tensor], rows: list[torch.Tensor]):
        super().__init__(losses, params)
        self._rows = rows


def toy_methods() -> list[str]:
    """Every registered method that can run on the toy (all of them: its one parameter is shared)."""
    return WEIGHTINGS.names()


class ToyOptimisation:
    """One weighting method from every start, stepped together."""

    def __init__(self, method: str, starts: Sequence[Sequence[float]] = STARTS, seed: int = 0,
                 options: dict | None = None):
        torch.manual_seed(seed)  # RLW and GradDrop draw random numbers
        self.method = method
        self.points = [ToyPoint(s) for s in starts]
        settings = dict(TOY_OPTIONS.get(method, {}), **(options or {}))
        self.weightings = [create_weighting(method, **settings) for _ in starts]
        for weighting, point in zip(self.weightings, self.points):
            weighting.setup(list(TASKS), {t: 1.0 for t in TASKS}, point)
        groups = [{"params": [p.x for p in self.points], "lr": LEARNING_RATE}]
        own = [q for w in self.weightings for q in w.parameters()]
        if own:
            groups.append({"params": own, "lr": METHOD_LEARNING_RATE})
        self.optimizer = torch.optim.Adam(groups, foreach=True)  # one call for all five points
        self.no_regulariser = torch.zeros(())
        self.steps_done = 0

    def positions(self) -> np.ndarray:
        """Where the starts are now: (starts, 2)."""
        return torch.stack([p.x.detach() for p in self.points]).numpy().copy()

    def step(self) -> None:
        """One update of every start: the methods fill ``.grad``, then one Adam step."""
        self.step_gradient()
        self.optimizer.step()
        self.steps_done += 1

    def step_gradient(self) -> None:
        """Fill each start's ``x.grad`` with its method's update (nothing moves yet)."""
        n_starts, n_tasks = len(self.points), len(TASKS)
        # One graph for every start and task: copy k of the points gives task k's gradient.
        x = torch.stack([p.x for p in self.points]).repeat(n_tasks, 1)  # (T*S, 2)
        losses = toy_losses(x)  # (T*S, T); start s's losses depend on its own point alone
        picked = torch.cat([losses[k * n_starts:(k + 1) * n_starts, k] for k in range(n_tasks)]).sum()
        jacobians = torch.autograd.grad(picked, x, retain_graph=True)[0].view(n_tasks, n_starts, 2).transpose(0, 1)
        self.optimizer.zero_grad(set_to_none=True)
        for s, (weighting, point) in enumerate(zip(self.weightings, self.points)):
            start_losses = {t: losses[s, k] for k, t in enumerate(TASKS)}
            gradients = FilledTaskGradients(start_losses, [point.x], [jacobians[s]])
            weighting.backward(start_losses, point, self.no_regulariser, gradients)

    def run(self, steps: int, record_every: int = 1) -> np.ndarray:
        """Take ``steps`` steps; the positions every ``record_every`` steps, (recorded, starts, 2)."""
        recorded = []
        for k in range(steps):
            if k % record_every == 0:
                recorded.append(self.positions())
            self.step()
        return np.stack(recorded) if recorded else np.empty((0, len(self.points), 2))


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
                 should_stop: Callable[[], bool] = lambda: False) -> Iterator[Trajectories]:
    """Run ``method`` from every start; yield the paths so far after every ``chunk`` steps.

    The last one yielded has ``finished=True`` (unless ``should_stop`` said
    stop first). Points are recorded every ``record_every`` steps, and the
    final position is always the last point.
    """
    run = ToyOptimisation(method, starts, seed=seed)
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
