"""Where dataset files live inside the data folder ``MTL_HOME``.

    MTL_HOME/
      torchvision/      torchvision's ``root``: MNIST/raw, FashionMNIST/raw,
                        cifar-10-batches-py, celeba (the files torchvision reads)
      datasets/<name>/  one imported dataset: manifest.json, labels.csv, images/
      cache/            tensors built once from the files above (safe to delete)

Where the data folder itself is (``MTL_HOME``, else ``~/.mtl-lab``) is
``mtlcore.home``'s to say; it imports nothing else, so the data layer asks it
without depending on the run store. The folder is read at every call, so
setting ``MTL_HOME`` takes effect at once.
"""
from __future__ import annotations

from pathlib import Path

from ..home import HOME_VARIABLE, resolve_home  # noqa: F401  (HOME_VARIABLE: an old import path)


def data_home() -> Path:
    """The data folder: ``$MTL_HOME`` if set, else ``~/.mtl-lab`` (absolute)."""
    return resolve_home()


def torchvision_root() -> Path:
    """The ``root`` given to torchvision's dataset classes."""
    return data_home() / "torchvision"


def imported_root() -> Path:
    """The folder holding one sub-folder per imported dataset."""
    return data_home() / "datasets"


def cache_root() -> Path:
    """Built tensors, so that a dataset's files are decoded only once."""
    return data_home() / "cache"
