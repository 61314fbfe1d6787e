"""Lesson links: the Train page's query parameters for a lesson, and the full address to hand out.

A link carries the configuration as flat keys (``ExperimentConfig.to_flat``)
plus the lesson keys of issue #19 §1, in the spirit of TensorFlow
Playground's links: ``hide=`` (controls students do not see; a hidden control
keeps its value, and results are never hidden), ``lock=`` (shown at the
teacher's value, disabled), ``explain=0`` (no explanations) and
``lesson=<id>`` (runs started from it carry the id to the class board).
"""
from __future__ import annotations

from typing import Iterable, Mapping
from urllib.parse import urlencode

from ..config import ExperimentConfig
from .model import EXPLAIN_PARAM, HIDE_PARAM, LESSON_PARAM, LOCK_PARAM

TRAIN_PATH = "train"  # the Train page's address under the app's root (views/train.py)
BOARD_PATH = "class_board"


def share_params(config: ExperimentConfig, hide: Iterable[str] = (), lock: Iterable[str] = (),
                 explain: bool = True, lesson: str | None = None) -> dict[str, str]:
    """The query parameters of a lesson link: ``config``'s non-default settings, then the lesson keys.

    A control both hidden and locked is only hidden (it keeps its value either way).
    """
    hide = list(dict.fromkeys(hide))
    lock = [key for key in dict.fromkeys(lock) if key not in hide]
    params = dict(config.to_flat())
    if hide:
        params[HIDE_PARAM] = ",".join(hide)
    if lock:
        params[LOCK_PARAM] = ",".join(lock)
    if not explain:
        params[EXPLAIN_PARAM] = "0"
    if lesson:
        params[LESSON_PARAM] = lesson
    return params


def link_url(base: str, path: str, params: Mapping[str, str]) -> str:
    """``base/path?params``, e.g. ``http://host:8501/train?tasks=shape%2Csize&lesson=l-1a2b``."""
    return f"{base.rstrip('/')}/{path.lstrip('/')}?{urlencode(dict(params))}"


def split_list(text: str | None) -> tuple[str, ...]:
    """``"optim,reg"`` -> ``("optim", "reg")`` (blank items dropped): how hide= and lock= are read."""
    return tuple(item.strip() for item in str(text or "").split(",") if item.strip())
