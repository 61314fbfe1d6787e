"""A lesson in the run store: which runs belong to it, whether it is closed, the students' answers.

The code lives in ``mtlcore.runs.lesson_room``, beside the run store's tables,
because the runner asks it when a run is queued (the run store may not import
the lessons package, which imports the store). The names stay importable here.
"""
from __future__ import annotations

from ..runs.lesson_room import MAX_ANSWER, LessonClosed, LessonRoom, SharedLesson, new_lesson_id  # noqa: F401
