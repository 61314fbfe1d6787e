"""A lesson in the run store: which runs belong to it, whether it is closed, the students' answers.

The class board and the teacher's controls (#19 §3, §5) live here, beside
the run store's tables in the same SQLite file (their schema is in
mtlcore.runs.schema, with every other table's):

    runs.lesson     the lesson a run was started from (a column of the runs table)
    lessons         one row per lesson that was shared or closed: title, goal, link, closed or not
    lesson_answers  one answer per student (browser key) and step

Who may do what follows mtlcore.owners: the teacher (and the machine's
user) may stop every run of a lesson, close it and reopen it; a student
stops only their own runs, whatever name they typed. A closed lesson refuses
new runs with one sentence (``LessonClosed``); the runs it already has keep
training unless the teacher stops them.

    >>> room = LessonRoom(store)
    >>> room.check_open("sharing")           # LessonClosed once the teacher closed it
    >>> room.runs("sharing")                 # every student's runs of the lesson, newest first
    >>> room.stop_all("sharing", runner, by=teacher)

It lives in mtlcore.runs, beside the tables it reads, because ``Runner.submit``
asks it (a closed lesson refuses Start); the lessons package (loader, board)
sits above the run store and imports it from here (``mtlcore.lessons.room``
re-exports it).
"""
from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..owners import Owner, as_owner, display_name
from .database import reading, writing
from .errors import NotOwnerError, StoreError

MAX_ANSWER = 200
_SLUG = re.compile(r"[^a-z0-9]+")


class LessonClosed(ValueError):
    """Start was pressed in a lesson the teacher has closed."""


@dataclass(frozen=True)
class SharedLesson:
    """A lesson made with "Share as a lesson": its id, title, goal and the link's parameters."""

    id: str
    title: str
    goal: str
    link: dict[str, str]
    owner: str
    closed: bool


def new_lesson_id(title: str) -> str:
    """A short id from the title plus 4 random characters, e.g. ``weights-race-7k2f``."""
    slug = _SLUG.sub("-", display_name(title).casefold()).strip("-")[:30].strip("-") or "lesson"
    return f"{slug}-{secrets.token_hex(2)}"


class LessonRoom:
    """The lesson tables of one run store (the store makes them when it opens)."""

    def __init__(self, store: Any):
        self.store = store

    def __repr__(self) -> str:
        return f"LessonRoom({self.store!r})"

    # ----- runs of a lesson ----------------------------------------------------
    def tag_run(self, run_id: str, lesson: str) -> None:
        """Record that ``run_id`` was started from ``lesson`` (the runner does this at submit)."""
        with writing(self.store.db_path) as conn:
            conn.execute("UPDATE runs SET lesson = ? WHERE id = ?", (lesson, run_id))

    def run_ids(self, lesson: str) -> list[str]:
        with reading(self.store.db_path) as conn:
            rows = conn.execute("SELECT id FROM runs WHERE lesson = ? ORDER BY created_at DESC, rowid DESC",
                                (lesson,)).fetchall()
        return [row["id"] for row in rows]

    def runs(self, lesson: str) -> list[Any]:
        """Every run started from ``lesson``, newest first (RunRecords)."""
        ids = set(self.run_ids(lesson))
        return [record for record in self.store.list_runs() if record.id in ids]

    def lesson_of(self, run_id: str) -> str | None:
        with reading(self.store.db_path) as conn:
            row = conn.execute("SELECT lesson FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row["lesson"] if row else None

    def lessons_with_runs(self) -> list[str]:
        """Ids of the lessons that have runs, the most recently used first."""
        with reading(self.store.db_path) as conn:
            rows = conn.execute("SELECT lesson, MAX(created_at) AS last FROM runs WHERE lesson IS NOT NULL "
                                "GROUP BY lesson ORDER BY last DESC").fetchall()
        return [row["lesson"] for row in rows]

    # ----- the teacher's controls ---------------------------------------------
    def _teacher(self, by: Owner | str | None, what: str) -> Owner:
        by = as_owner(by)
        if not by.trusted:
            raise NotOwnerError(f"Only the teacher can {what}; unlock teacher mode in the sidebar with the "
                                "teacher password.")
        return by

    def close(self, lesson: str, by: Owner | str | None = None) -> str:
        """Close ``lesson`` to new runs (the teacher); its runs keep going. Returns a sentence."""
        by = self._teacher(by, "close a lesson")
        now = time.time()
        with writing(self.store.db_path) as conn:
            conn.execute("INSERT OR IGNORE INTO lessons (id, created_at) VALUES (?, ?)", (lesson, now))
            conn.execute("UPDATE lessons SET closed_at = ?, closed_by = ? WHERE id = ?", (now, by.name, lesson))
        return f"Lesson {lesson} is closed: Start is refused in it until it is reopened."

    def reopen(self, lesson: str, by: Owner | str | None = None) -> str:
        self._teacher(by, "reopen a lesson")
        with writing(self.store.db_path) as conn:
            conn.execute("UPDATE lessons SET closed_at = NULL, closed_by = NULL WHERE id = ?", (lesson,))
        return f"Lesson {lesson} is open again: students can start runs in it."

    def is_closed(self, lesson: str) -> bool:
        with reading(self.store.db_path) as conn:
            row = conn.execute("SELECT closed_at FROM lessons WHERE id = ?", (lesson,)).fetchone()
        return row is not None and row["closed_at"] is not None

    def check_open(self, lesson: str) -> None:
        """LessonClosed (one sentence) when the teacher has closed ``lesson``."""
        if self.is_closed(lesson):
            raise LessonClosed(f"The teacher has closed the lesson {lesson!r}, so it takes no new runs; "
                               "your earlier runs and results are kept.")

    def stop_all(self, lesson: str, runner: Any, by: Owner | str | None = None) -> str:
        """Stop every queued or running run of ``lesson`` (the teacher); return what happened, as a sentence."""
        by = self._teacher(by, "stop every run of a lesson")
        active = [r for r in self.runs(lesson) if r.is_active]
        stopped = 0
        for record in active:
            try:
                runner.cancel(record.id, by=by)
                stopped += 1
            except StoreError:
                continue  # it ended (or was deleted) between the list and the stop
        if not active:
            return f"Lesson {lesson} has no run waiting or training; nothing to stop."
        return f"Stopping {stopped} run{'s' if stopped != 1 else ''} of lesson {lesson}; their metrics so far are kept."

    # ----- shared lessons (the "Share as a lesson" panel) ----------------------
    def share(self, title: str, goal: str, link: Mapping[str, str], by: Owner | str | None = None) -> SharedLesson:
        """Record a lesson link: a new id that carries ``title`` and ``goal`` to the class board."""
        by = as_owner(by)
        title = display_name(title) if title.strip() else "Lesson"
        while True:
            lesson_id = new_lesson_id(title)
            params = {**{str(k): str(v) for k, v in link.items()}, "lesson": lesson_id}
            with writing(self.store.db_path) as conn:
                if conn.execute("SELECT 1 FROM lessons WHERE id = ?", (lesson_id,)).fetchone():
                    continue  # the 4 random characters clashed: draw again
                conn.execute("INSERT INTO lessons (id, title, goal, link, owner, owner_key, created_at) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (lesson_id, title, goal.strip(), json.dumps(params), by.name, by.key_hash, time.time()))
            return SharedLesson(lesson_id, title, goal.strip(), params, by.name, False)

    def shared(self, lesson: str) -> SharedLesson | None:
        """The shared lesson with this id, or None (a built-in lesson, or unknown)."""
        with reading(self.store.db_path) as conn:
            row = conn.execute("SELECT * FROM lessons WHERE id = ?", (lesson,)).fetchone()
        if row is None or not row["title"]:
            return None
        try:
            link = json.loads(row["link"] or "{}")
        except json.JSONDecodeError:
            link = {}
        return SharedLesson(row["id"], row["title"], row["goal"], link, row["owner"], row["closed_at"] is not None)

    def shared_lessons(self) -> list[SharedLesson]:
        with reading(self.store.db_path) as conn:
            ids = [row["id"] for row in conn.execute(
                "SELECT id FROM lessons WHERE title != '' ORDER BY created_at DESC").fetchall()]
        return [lesson for lesson in map(self.shared, ids) if lesson is not None]

    # ----- answers ---------------------------------------------------------------
    def answer(self, lesson: str, step: int, text: str, by: Owner | str | None = None) -> None:
        """Keep this student's answer to ``step`` of ``lesson`` (a later answer replaces it)."""
        by = as_owner(by)
        text = " ".join(str(text or "").split())[:MAX_ANSWER]
        if not text:
            raise ValueError("Pick an answer first.")
        with writing(self.store.db_path) as conn:
            conn.execute("INSERT OR REPLACE INTO lesson_answers VALUES (?, ?, ?, ?, ?, ?)",
                         (lesson, int(step), by.name, by.key_hash or "", text, time.time()))

    def my_answer(self, lesson: str, step: int, by: Owner | str | None = None) -> str | None:
        by = as_owner(by)
        with reading(self.store.db_path) as conn:
            row = conn.execute("SELECT answer FROM lesson_answers WHERE lesson = ? AND step = ? AND owner_key = ? "
                               "AND (owner_key != '' OR owner = ?)",
                               (lesson, int(step), by.key_hash or "", by.name)).fetchone()
        return row["answer"] if row else None

    def answers(self, lesson: str) -> dict[int, dict[str, int]]:
        """How many students gave each answer, by step: ``{step: {answer: count}}``."""
        with reading(self.store.db_path) as conn:
            rows = conn.execute("SELECT step, answer, COUNT(*) AS n FROM lesson_answers WHERE lesson = ? "
                                "GROUP BY step, answer ORDER BY step", (lesson,)).fetchall()
        counts: dict[int, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["step"], {})[row["answer"]] = row["n"]
        return counts
