"""Where background runs live on disk: the data folder ``MTL_HOME``.

    MTL_HOME/
      mtl.sqlite            runs, metrics, workers (see database.py)
      runs/<id>/            one folder per run: checkpoint.pt
      logs/                 each worker's stdout and stderr
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "MTL_HOME"


def default_home() -> Path:
    """The data folder: the ``MTL_HOME`` environment variable if set, else ``~/.mtl-lab``."""
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".mtl-lab"


def resolve_home(home: Path | str | None) -> Path:
    """``home`` as an absolute path (workers may start in another folder); None means the default."""
    return (Path(home).expanduser() if home not in (None, "") else default_home()).absolute()
