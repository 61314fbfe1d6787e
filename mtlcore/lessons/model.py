"""A guided lesson as data: a title, a goal, and steps that set the Train page's controls.

A lesson is read from a TOML file (``lessons/*.toml``, see mtlcore.lessons.loader)
so that a teacher can write one without Python. Each step is one or two
sentences, the settings it puts on the Train page (flat config keys, as in
the URL: ``dataset.name``, ``tasks``, ``loss.weights.shape``), the controls it
hides or locks, and a question whose answer the student measures.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ExperimentConfig

# The URL keys of a lesson link that are not configuration settings (the Train page leaves them out of the config).
LESSON_PARAM, STEP_PARAM, HIDE_PARAM, LOCK_PARAM, EXPLAIN_PARAM = "lesson", "step", "hide", "lock", "explain"
LINK_PARAMS = (LESSON_PARAM, STEP_PARAM, HIDE_PARAM, LOCK_PARAM, EXPLAIN_PARAM)


@dataclass(frozen=True)
class Step:
    """One step: what to read, what it sets, what it hides and locks, what to measure."""

    text: str
    settings: dict[str, str] = field(default_factory=dict)  # flat keys on top of the lesson's settings
    hide: tuple[str, ...] = ()  # flat keys or section prefixes ("optim") of controls students do not see
    lock: tuple[str, ...] = ()  # controls shown at the lesson's value, disabled
    question: str = ""
    choices: tuple[str, ...] = ()  # the answers a student picks from (the board counts them)
    answer: str = ""  # what the lesson's author measured: shown after a student answered


@dataclass(frozen=True)
class Lesson:
    """A guided lesson: ``steps`` in order, every one starting from ``settings``."""

    id: str
    title: str
    goal: str  # a goal phrase (mtlcore.lessons.goal), what the class board sorts by
    steps: tuple[Step, ...]
    summary: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    measured: str = ""  # how the author checked the lesson's claims (seeds, spread, minutes)
    explain: bool = True  # False: the Train page hides its explanations during the lesson

    def step(self, number: int) -> Step:
        """Step ``number``, counted from 1 (clamped into range: a hand-edited link cannot break the page)."""
        return self.steps[min(max(int(number), 1), len(self.steps)) - 1]

    def step_settings(self, number: int) -> dict[str, str]:
        """The flat settings of step ``number``: the lesson's, then the step's own."""
        return {**self.settings, **self.step(number).settings}

    def step_config(self, number: int) -> ExperimentConfig:
        return ExperimentConfig.from_flat(self.step_settings(number))

    def link_params(self, number: int = 1) -> dict[str, str]:
        """The query parameters of the Train page at step ``number``: its config, the lesson and the step.

        Settings equal to the default are left out (as ``to_flat`` does), so links stay short.
        """
        from .links import share_params  # here: links imports this module's names

        number = min(max(int(number), 1), len(self.steps))
        step = self.step(number)
        params = share_params(self.step_config(number), step.hide, step.lock, self.explain, self.id)
        params[STEP_PARAM] = str(number)
        return params
