"""Where dataset files live inside the data folder ``MTL_HOME``.

    MTL_HOME/
      torchvision/      torchvision's ``root``: MNIST/raw, FashionMNIST/raw,
                        cifar-10-batches-py, celeba (the files torchvision reads)
      datasets/<name>/  one imported dataset: manifest.json, labels.csv, images/
      cache/            tensors built once from the files above (safe to delete)

The data folder is the ``MTL_HOME`` environment variable, else ``~/.mtl-lab``
-- the same rule as ``mtlcore.runs.home.default_home``. It is repeated here
rather than imported because importing ``mtlcore.runs`` imports the engine,
which imports this package: the data layer must not depend on the run store.
The folder is read at every call, so setting ``MTL_HOME`` takes effect at once.
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "MTL_HOME"


def data_home() -> Path:
    """The data folder: ``$MTL_HOME`` if set, else ``~/.mtl-lab`` (absolute)."""
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    home = Path(configured).expanduser() if configured else Path.home() / ".mtl-lab"
    return home.absolute()


def torchvision_root() -> Path:
    """The ``root`` given to torchvision's dataset classes."""
    return data_home() / "torchvision"


def imported_root() -> Path:
    """The folder holding one sub-folder per imported dataset."""
    return data_home() / "datasets"


def cache_root() -> Path:
    """Built tensors, so that a dataset's files are decoded only once."""
    return data_home() / "cache"
