"""Read and check lesson files (``lessons/*.toml``); a bad file gets one clear sentence.

Python 3.11's ``tomllib`` reads them, so a lesson needs no new dependency.
A file looks like this (see lessons/ for the built-in ones)::

    id = "sharing"
    title = "Does sharing help related tasks?"
    goal = "best Delta_m"
    [settings]
    "dataset.name" = "shapes"
    [[steps]]
    text = "Train shape alone first."
    settings = { tasks = "shape", "model.arch" = "single" }
    hide = ["optim", "reg"]
    question = "What accuracy did shape reach alone?"
    choices = ["below 80 %", "80-90 %", "above 90 %"]

Every step's settings go through the configuration's own checks
(``set_key`` then ``validate``), so a lesson cannot ask for a task, value
or architecture the Train page would refuse.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, ExperimentConfig, set_key, validate
from .goal import GoalError, parse_goal
from .model import Lesson, Step

LESSON_KEYS = ("id", "title", "goal", "summary", "settings", "measured", "explain", "steps")
STEP_KEYS = ("text", "settings", "hide", "lock", "question", "choices", "answer")
REQUIRED = ("id", "title", "goal", "steps")
LESSON_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_STEPS = 12
MAX_CHOICES = 6
MAX_TEXT = 600  # characters of a step's text: one or two sentences


class LessonError(ValueError):
    """A lesson file that cannot be used; the message names the file, the place and what is accepted."""


def lessons_folder() -> Path:
    """The built-in lessons: ``lessons/`` at the top of the repository."""
    return Path(__file__).resolve().parents[2] / "lessons"


def load_lessons(folder: Path | str | None = None) -> list[Lesson]:
    """Every ``*.toml`` lesson of ``folder`` (default: the built-in ones), by file name; LessonError for a bad one."""
    folder = Path(folder) if folder is not None else lessons_folder()
    lessons = [load_lesson(path) for path in sorted(folder.glob("*.toml"))]
    seen: dict[str, str] = {}
    for lesson, path in zip(lessons, sorted(folder.glob("*.toml"))):
        if lesson.id in seen:
            raise LessonError(f"{path.name}: the id {lesson.id!r} is already used by {seen[lesson.id]}; "
                              "give each lesson its own id.")
        seen[lesson.id] = path.name
    return lessons


def find_lesson(lesson_id: str, folder: Path | str | None = None) -> Lesson | None:
    """The built-in lesson with this id, or None."""
    return next((lesson for lesson in load_lessons(folder) if lesson.id == lesson_id), None)


def load_lesson(path: Path | str) -> Lesson:
    """Read one lesson file; LessonError (one sentence, naming the file) when it is not a usable lesson."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise LessonError(f"{path.name} is not valid TOML ({error}).") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LessonError(f"{path.name} cannot be read ({error}).") from None
    return lesson_from_dict(data, path.name)


def lesson_from_dict(data: dict[str, Any], where: str = "the lesson") -> Lesson:
    """A checked Lesson from the TOML's table (``where`` names it in messages)."""
    _known_keys(data, LESSON_KEYS, where)
    for key in REQUIRED:
        if key not in data:
            raise LessonError(f"{where}: the key {key!r} is missing; a lesson needs {', '.join(REQUIRED)}.")
    lesson_id = _text(data, "id", where)
    if not LESSON_ID.match(lesson_id):
        raise LessonError(f"{where}: id {lesson_id!r} must be 1-40 lowercase letters, digits or dashes.")
    settings = _settings(data.get("settings", {}), where)
    raw_steps = data["steps"]
    if not isinstance(raw_steps, list) or not raw_steps or not all(isinstance(s, dict) for s in raw_steps):
        raise LessonError(f"{where}: 'steps' must be a list of [[steps]] tables, at least one.")
    if len(raw_steps) > MAX_STEPS:
        raise LessonError(f"{where}: a lesson has at most {MAX_STEPS} steps, this one {len(raw_steps)}.")
    steps = tuple(_step(raw, settings, f"{where}, step {i}") for i, raw in enumerate(raw_steps, 1))
    explain = data.get("explain", True)
    if not isinstance(explain, bool):
        raise LessonError(f"{where}: 'explain' is true or false, not {explain!r}.")
    lesson = Lesson(id=lesson_id, title=_text(data, "title", where), goal=_text(data, "goal", where), steps=steps,
                    summary=_text(data, "summary", where, ""), settings=settings,
                    measured=_text(data, "measured", where, ""), explain=explain)
    try:
        parse_goal(lesson.goal, lesson_tasks(lesson))
    except GoalError as error:
        raise LessonError(f"{where}: {error}") from None
    return lesson


def lesson_tasks(lesson: Lesson) -> dict[str, tuple[str, bool]]:
    """Every task any step trains: name -> (metric, higher_is_better), from the dataset registry."""
    from ..data import dataset_info  # imported here: the registry imports torch

    tasks: dict[str, tuple[str, bool]] = {}
    for number in range(1, len(lesson.steps) + 1):
        config = lesson.step_config(number)
        specs = {spec.name: spec for spec in dataset_info(config.dataset.name).tasks}
        for task in config.tasks:
            tasks.setdefault(task, (specs[task].metric, specs[task].higher_is_better))
    return tasks


# ----- the parts ----------------------------------------------------------------------

def _known_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise LessonError(f"{where}: unknown key {unknown[0]!r}; the keys are: {', '.join(allowed)}.")


def _text(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise LessonError(f"{where}: {key!r} must be a non-empty text in quotes, not {value!r}.")
    if len(value) > MAX_TEXT:
        raise LessonError(f"{where}: {key!r} is {len(value)} characters; keep it under {MAX_TEXT} "
                          "(one or two sentences).")
    return value.strip()


def _settings(raw: Any, where: str) -> dict[str, str]:
    """Flat settings as URL text: numbers and booleans written as the URL writes them, lists joined by commas."""
    if not isinstance(raw, dict):
        raise LessonError(f"{where}: 'settings' must be a table of flat keys, e.g. {{ tasks = \"shape,size\" }}.")
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            raise LessonError(f"{where}: write the setting {key!r} as flat keys in quotes, e.g. "
                              f"\"{key}.NAME\" = VALUE, not as a table.")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        flat[str(key)] = str(value)
    return flat


def _step(raw: dict[str, Any], base: dict[str, str], where: str) -> Step:
    _known_keys(raw, STEP_KEYS, where)
    settings = _settings(raw.get("settings", {}), where)
    config = ExperimentConfig()
    try:
        for key, value in {**base, **settings}.items():
            config = set_key(config, key, value)
        validate(config)
    except (ConfigError, ValueError) as error:
        raise LessonError(f"{where}: {error}") from None
    hide, lock = _controls(raw, "hide", config, where), _controls(raw, "lock", config, where)
    choices = raw.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise LessonError(f"{where}: 'choices' must be a list of answers in quotes.")
    if choices and not 2 <= len(choices) <= MAX_CHOICES:
        raise LessonError(f"{where}: a question has 2 to {MAX_CHOICES} choices, this one {len(choices)}.")
    question = _text(raw, "question", where, "")
    if choices and not question:
        raise LessonError(f"{where}: it has choices but no 'question'.")
    return Step(text=_text(raw, "text", where), settings=settings, hide=hide, lock=lock, question=question,
                choices=tuple(c.strip() for c in choices), answer=_text(raw, "answer", where, ""))


def _controls(raw: dict[str, Any], key: str, config: ExperimentConfig, where: str) -> tuple[str, ...]:
    names = raw.get(key, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise LessonError(f"{where}: {key!r} must be a list of setting names in quotes, e.g. [\"optim\", \"reg\"].")
    for name in names:
        if not is_control(config, name):
            raise LessonError(f"{where}: {key} names {name!r}, which is not a setting; use a flat key such as "
                              "optim.lr, tasks or loss.weights.shape, or a section such as optim or reg.")
    return tuple(names)


def is_control(config: ExperimentConfig, name: str) -> bool:
    """Whether ``name`` is a setting of ``config`` (``optim.lr``, ``tasks.shape``) or a section (``optim``, ``loss.weights``).

    Inside a section's table of names (dataset options, loss weights) any
    task or option of the config's dataset counts.
    """
    from ..data import dataset_info  # imported here: the registry imports torch

    info = dataset_info(config.dataset.name)
    if name.startswith("tasks."):  # the tick box of one task (the Train page's "tasks.<task>")
        return name[len("tasks."):] in {t.name for t in info.tasks}
    node: Any = config
    parts = name.split(".")
    for depth, part in enumerate(parts):
        if is_dataclass(node) and part in {f.name for f in fields(node)}:
            node = getattr(node, part)
            continue
        if depth == 1 and parts[0] == "dataset" and part in info.options:
            return len(parts) == 2
        if isinstance(node, dict) and depth == len(parts) - 1:
            return part in {t.name for t in info.tasks} if parts[:2] == ["loss", "weights"] else True
        return False
    return True
