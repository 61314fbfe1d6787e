"""The data folder, ``MTL_HOME``: the one place that says where it is.

    MTL_HOME/
      mtl.sqlite, runs/, logs/     background runs (mtlcore/runs/home.py says what is where)
      torchvision/, datasets/, cache/   dataset files (mtlcore/data/folders.py)
      reproductions/               results of ``python -m mtlcore reproduce``

It is the ``MTL_HOME`` environment variable if set, else ``~/.mtl-lab``. The
variable is read at every call, so setting it takes effect at once (tests
and the command line's ``--home`` rely on that).

This module imports nothing from mtlcore and no torch: the data package, the
run store, the doctor and the pages all ask it, and none of them has to load
the others (or the engine) to learn where the folder is.
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "MTL_HOME"
DEFAULT_HOME = Path("~") / ".mtl-lab"


def default_home() -> Path:
    """The data folder: the ``MTL_HOME`` environment variable if set, else ``~/.mtl-lab``."""
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_HOME.expanduser()


def resolve_home(home: Path | str | None = None) -> Path:
    """``home`` as an absolute path (workers may start in another folder); None means the default."""
    return (Path(home).expanduser() if home not in (None, "") else default_home()).absolute()


def home_source() -> str:
    """Where the folder comes from, in words, for ``doctor``: the variable, or the default and how to move it."""
    if os.environ.get(HOME_VARIABLE, "").strip():
        return f"from {HOME_VARIABLE}"
    return f"default; set {HOME_VARIABLE} to move it"
