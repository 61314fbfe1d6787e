"""A lesson's goal: the one sentence the class board sorts the runs by.

Goals are short English phrases a teacher can type, e.g.::

    best Delta_m
    highest shape accuracy
    lowest size MAE
    highest shape accuracy with size MAE under 0.5

``best Delta_m`` ranks multi-task runs by Delta_m against their single-task
baselines (Maninis et al., CVPR 2019, with the sign of Nash-MTL, Navon et al.
2022: negative = sharing helped; see mtlcore.compare.delta_m), so lower is
better. ``highest``/``lowest`` rank by one task's test metric. A ``with ...
under|below|over|above N`` condition puts the runs that meet it above those
that do not (the board shows which is which), then ranks by the goal.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

DELTA_M = "delta_m"
_METRIC_NAMES = {"accuracy": "accuracy", "acc": "accuracy", "mae": "mae", "error": "mae", "mse": "mse"}
_DIRECTIONS = {"highest": True, "lowest": False}
_LIMITS = {"under": False, "below": False, "over": True, "above": True}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SIMPLE = re.compile(r"^(highest|lowest)\s+(\S+)\s+(\S+)$", re.IGNORECASE)
_CONDITION = re.compile(rf"^(\S+)\s+(\S+)\s+(under|below|over|above)\s+({_NUMBER})(?:\s*%|\s*px)?$", re.IGNORECASE)
_DELTA = re.compile(r"^best\s+(delta[_ ]?m|δm|Δm)$", re.IGNORECASE)

GOAL_FORMS = ("best Delta_m", "highest TASK accuracy", "lowest TASK MAE",
              "highest TASK accuracy with TASK MAE under NUMBER")


class GoalError(ValueError):
    """A goal the board cannot read; the message shows the forms it can."""


@dataclass(frozen=True)
class Condition:
    """``task metric under|over limit``: a run meets it when its test value is on the right side."""

    task: str
    metric: str
    above: bool  # True: the value must be over the limit
    limit: float

    def met(self, values: Mapping[str, Mapping[str, float]]) -> bool | None:
        """Whether ``values[task][metric]`` meets the condition; None when the run has no such value."""
        value = (values.get(self.task) or {}).get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        return value > self.limit if self.above else value < self.limit

    def __str__(self) -> str:
        return f"{self.task} {metric_text(self.metric)} {'over' if self.above else 'under'} {self.limit:g}"


@dataclass(frozen=True)
class Goal:
    """What the board ranks by: ``task``'s ``metric`` (or Delta_m), in a direction, maybe with a condition."""

    text: str
    task: str | None  # None for Delta_m
    metric: str  # "accuracy", "mae", "mse" or DELTA_M
    higher_is_better: bool
    condition: Condition | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks the goal names, in order (the board's two axes start from these)."""
        named = [t for t in (self.task, self.condition.task if self.condition else None) if t]
        return tuple(dict.fromkeys(named))

    @property
    def column(self) -> str:
        """The board table's column of the goal's value."""
        return "Δm %" if self.metric == DELTA_M else f"{self.task} {metric_text(self.metric)}"

    def value(self, values: Mapping[str, Mapping[str, float]], delta_m: float | None = None) -> float | None:
        """The run's value of the goal: its test metric (``values[task][metric]``) or its Delta_m."""
        if self.metric == DELTA_M:
            return delta_m
        value = (values.get(self.task or "") or {}).get(self.metric)
        return value if value is not None and math.isfinite(value) else None

    def sort_key(self, values: Mapping[str, Mapping[str, float]], delta_m: float | None = None) -> tuple:
        """Ascending key: runs meeting the condition first, then the best value first, runs with no value last."""
        value = self.value(values, delta_m)
        met = self.condition.met(values) if self.condition else True
        missing = value is None
        ranked = 0.0 if missing else (-value if self.higher_is_better else value)
        return (0 if met else 1, missing, ranked)


def metric_text(metric: str) -> str:
    return {"mae": "MAE", "mse": "MSE", DELTA_M: "Δm"}.get(metric, metric)


def _metric(word: str, text: str) -> str:
    metric = _METRIC_NAMES.get(word.lower())
    if metric is None:
        raise GoalError(f"The goal {text!r} names an unknown metric {word!r}; use accuracy or MAE "
                        f"(forms: {'; '.join(GOAL_FORMS)}).")
    return metric


def parse_goal(text: str, tasks: Mapping[str, tuple[str, bool]] | None = None) -> Goal:
    """Read a goal phrase; ``tasks`` (name -> (metric, higher_is_better)) checks the tasks and metrics it names.

    Raises GoalError with one sentence that shows the accepted forms.
    """
    text = " ".join(str(text or "").split())
    main, _, rest = text.partition(" with ")
    if _DELTA.match(main):
        goal = Goal(text, None, DELTA_M, False)
    else:
        match = _SIMPLE.match(main)
        if not match:
            raise GoalError(f"The goal {text!r} is not one the board can sort by; write one of: "
                            f"{'; '.join(GOAL_FORMS)}.")
        direction, task, word = match.groups()
        goal = Goal(text, task, _metric(word, text), _DIRECTIONS[direction.lower()])
    if rest:
        match = _CONDITION.match(rest.strip())
        if not match:
            raise GoalError(f"The condition {rest!r} of the goal is not readable; write e.g. "
                            "'with size MAE under 0.5'.")
        task, word, side, limit = match.groups()
        goal = Goal(text, goal.task, goal.metric, goal.higher_is_better,
                    Condition(task, _metric(word, text), _LIMITS[side.lower()], float(limit)))
    if tasks is not None:
        for task, metric in ((goal.task, goal.metric), *((c.task, c.metric) for c in [goal.condition] if c)):
            if task is None:
                continue
            if task not in tasks:
                raise GoalError(f"The goal names task {task!r}, which the lesson does not train; its tasks "
                                f"are: {', '.join(tasks)}.")
            if tasks[task][0] != metric:
                raise GoalError(f"Task {task!r} is scored by {metric_text(tasks[task][0])}, not "
                                f"{metric_text(metric)}; write '{metric_text(tasks[task][0])}' in the goal.")
    return goal


def describe(goal: Goal) -> str:
    """The goal in words for the board's heading, e.g. "highest shape accuracy, among runs with size MAE under 0.5"."""
    if goal.metric == DELTA_M:
        head = "lowest Δm (negative = sharing helped, against single-task baselines)"
    else:
        head = f"{'highest' if goal.higher_is_better else 'lowest'} {goal.task} {metric_text(goal.metric)}"
    return head + (f", among runs with {goal.condition}" if goal.condition else "")

