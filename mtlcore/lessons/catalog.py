"""Every lesson the class board can show, built-in or shared, as one shape: title, goal, tasks, questions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..config import ConfigError, ExperimentConfig
from .goal import Goal, GoalError, parse_goal
from .loader import LessonError, lesson_tasks, load_lessons
from .model import LINK_PARAMS, Lesson
from .room import LessonRoom


@dataclass(frozen=True)
class BoardLesson:
    """What the board needs of a lesson, wherever it came from."""

    id: str
    title: str
    goal: Goal
    tasks: dict[str, tuple[str, bool]]  # task -> (metric, higher_is_better), in the lesson's order
    questions: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # step -> (question, choices)
    closed: bool = False
    built_in: bool = False


def default_goal(tasks: dict[str, tuple[str, bool]]) -> str:
    """Without a goal: the first task's metric, in its better direction."""
    if not tasks:
        return "best Delta_m"
    task, (metric, higher) = next(iter(tasks.items()))
    return f"{'highest' if higher else 'lowest'} {task} {metric}"


def _tasks_of(configs: Sequence[ExperimentConfig]) -> dict[str, tuple[str, bool]]:
    from ..data import dataset_info  # imported here: the registry imports torch

    tasks: dict[str, tuple[str, bool]] = {}
    for config in configs:
        try:
            specs = {spec.name: spec for spec in dataset_info(config.dataset.name).tasks}
        except (KeyError, ValueError):
            continue
        for task in config.tasks:
            if task in specs:
                tasks.setdefault(task, (specs[task].metric, specs[task].higher_is_better))
    return tasks


def _goal(text: str, tasks: dict[str, tuple[str, bool]]) -> Goal:
    try:
        return parse_goal(text or default_goal(tasks), tasks or None)
    except GoalError:
        return parse_goal(default_goal(tasks))


def board_lesson(lesson_id: str, room: LessonRoom, runs: Sequence[Any] = (),
                 lessons: Sequence[Lesson] | None = None) -> BoardLesson:
    """The lesson ``lesson_id`` as the board shows it: a built-in one, a shared one, or one known only by its runs."""
    if lessons is None:
        try:
            lessons = load_lessons()
        except LessonError:
            lessons = []
    closed = room.is_closed(lesson_id)
    lesson = next((item for item in lessons if item.id == lesson_id), None)
    if lesson is not None:
        tasks = lesson_tasks(lesson)
        questions = {n: (s.question, s.choices) for n, s in enumerate(lesson.steps, 1) if s.question}
        return BoardLesson(lesson.id, lesson.title, _goal(lesson.goal, tasks), tasks, questions, closed, True)
    shared = room.shared(lesson_id)
    configs = [run.config for run in runs]
    title = lesson_id
    goal_text = ""
    if shared is not None:
        title, goal_text = shared.title, shared.goal
        try:
            configs.insert(0, ExperimentConfig.from_flat(
                {k: v for k, v in shared.link.items() if k not in LINK_PARAMS}))
        except (ConfigError, ValueError):
            pass
    tasks = _tasks_of(configs)
    return BoardLesson(lesson_id, title, _goal(goal_text, tasks), tasks, {}, closed)


def board_choices(room: LessonRoom, lessons: Sequence[Lesson] | None = None) -> dict[str, str]:
    """Every lesson the board can open: id -> title (built-in, then shared, then ones known only by runs)."""
    if lessons is None:
        try:
            lessons = load_lessons()
        except LessonError:
            lessons = []
    choices = {lesson.id: lesson.title for lesson in lessons}
    for shared in room.shared_lessons():
        choices.setdefault(shared.id, f"{shared.title} (shared by {shared.owner})")
    for lesson_id in room.lessons_with_runs():
        choices.setdefault(lesson_id, lesson_id)
    return choices
