"""Classroom lessons: lesson files, their goals, the lesson's runs in the store and the class board's table.

    >>> from mtlcore.lessons import load_lessons, parse_goal, LessonRoom, board_rows
    >>> lessons = load_lessons()                      # lessons/*.toml, checked
    >>> lessons[0].link_params(1)                     # the Train page's URL at step 1
    >>> goal = parse_goal("highest shape accuracy with size MAE under 0.5")
    >>> rows = board_rows(LessonRoom(store).runs(lesson.id), goal, store.list_runs())

See issue #19 (classroom mode). Nothing here imports Streamlit; torch only
through the dataset registry, when a lesson is checked.
"""
from __future__ import annotations

from .board import (BoardRow, answer_shares, axes, board_rows, export_csv, pareto_front, run_values, sort_rows,
                    student_points, table)
from .catalog import BoardLesson, board_choices, board_lesson
from .goal import GOAL_FORMS, Condition, Goal, GoalError, describe, metric_text, parse_goal
from .links import BOARD_PATH, TRAIN_PATH, link_url, share_params, split_list
from .loader import LessonError, find_lesson, is_control, lesson_from_dict, lesson_tasks, lessons_folder, load_lesson, load_lessons
from .model import (EXPLAIN_PARAM, HIDE_PARAM, LESSON_PARAM, LINK_PARAMS, LOCK_PARAM, STEP_PARAM, Lesson, Step)
from .room import LessonClosed, LessonRoom, SharedLesson, new_lesson_id

__all__ = [
    "BOARD_PATH", "BoardLesson", "BoardRow", "board_choices", "board_lesson", "TRAIN_PATH", "link_url", "share_params", "split_list", "Condition", "EXPLAIN_PARAM", "GOAL_FORMS", "Goal", "GoalError", "HIDE_PARAM", "LESSON_PARAM",
    "LINK_PARAMS", "LOCK_PARAM", "Lesson", "LessonClosed", "LessonError", "LessonRoom", "STEP_PARAM",
    "SharedLesson", "Step", "answer_shares", "axes", "board_rows", "describe", "export_csv", "find_lesson",
    "is_control", "lesson_from_dict", "lesson_tasks", "lessons_folder", "load_lesson", "load_lessons",
    "metric_text", "new_lesson_id", "pareto_front", "parse_goal", "run_values", "sort_rows", "student_points",
    "table",
]
