"""What the datasets read with torchvision share: checks, messages, pools, pixels.

Each such dataset (``multimnist``, ``cifar10``, ``celeba``) reads its files
with torchvision's own dataset class, always with ``download=False`` -- a
download only happens when the user asks for one (the Data page's button or
``python -m mtlcore download NAME``). When the files are missing, the dataset
is listed as unavailable with one sentence saying which files to place in
which folder, and loading it raises a ``ValueError`` with that sentence;
the other datasets are not affected.

torchvision is imported inside the functions: it takes seconds to import,
and listing datasets or starting the app should not wait for it.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .base import split_indices
from .download import DownloadError, Progress, no_progress

# Inputs are scaled to [0, 1] and then normalised as (x - 0.5) / 0.5 to
# [-1, 1], like the embedded datasets: one convention for every dataset, and
# the same one that ``preprocess`` applies to a user's picture.
MEAN, STD = 0.5, 0.5


def join_names(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def missing_sentence(title: str, files: Sequence[str], folder: Path, name: str, where_note: str = "",
                     note: str = "") -> str:
    """The one sentence shown for a dataset whose files are not there."""
    return (f"{title} is not in the data folder: place {join_names(files)} in {folder}{where_note}, or download "
            f"it on the Data page (python -m mtlcore download {name}){note}.")


@contextlib.contextmanager
def clear_errors(title: str, folder: Path) -> Iterator[None]:
    """Turn torchvision's "not found or corrupted" RuntimeError into one sentence."""
    try:
        yield
    except (RuntimeError, OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"The {title} files in {folder} cannot be read ({error}); delete them and download "
            "again, or place fresh copies there."
        ) from None


def guarded_download(title: str, sentence: Callable[[], str | None], fetch: Callable[[Progress], None],
                     progress: Progress | None = None) -> None:
    """Run ``fetch``; on any failure raise DownloadError naming the manual way."""
    progress = progress or no_progress
    try:
        fetch(progress)
    except Exception as error:
        manual = sentence() or ""
        raise DownloadError(f"Downloading {title} failed ({error}). {manual}".strip()) from None
    progress(1.0, f"{title} is ready")


def pool_indices(seed: int, n_samples: int, n_train_source: int, n_test_source: int,
                 val_fraction: float = 1 / 6) -> dict[str, tuple[np.ndarray, int]]:
    """Where each split draws from, and how many samples it gets.

    The dataset's own test files stay the test pool; its training files are
    cut (seeded) into a training pool and a validation pool, so that no test
    picture is ever seen in training or model selection. The split sizes
    follow the 70/15/15 of every other dataset (``split_indices``).

    Returns ``{split: (pool indices, size)}``; training and validation pools
    index the training files, the test pool indexes the test files.
    """
    rng = np.random.RandomState(seed)
    train_source = rng.permutation(n_train_source)
    n_val_pool = max(1, int(round(n_train_source * val_fraction)))
    sizes = [len(idx) for idx in split_indices(n_samples, seed)]
    return {
        "train": (train_source[n_val_pool:], sizes[0]),
        "val": (train_source[:n_val_pool], sizes[1]),
        "test": (rng.permutation(n_test_source), sizes[2]),
    }


def to_inputs(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """uint8 N x C x H x W pictures as float32 inputs in [-1, 1], resized to
    ``size`` x ``size`` when given; torchvision's v2 transforms work on the
    whole batch at once. Done in chunks to keep the float copies small."""
    from torchvision.transforms import v2

    steps = [v2.ToDtype(torch.float32, scale=True)]
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        steps += [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    steps.append(v2.Normalize([MEAN] * images.shape[1], [STD] * images.shape[1]))
    transform = v2.Compose(steps)
    return torch.cat([transform(chunk) for chunk in images.split(4096)]).clamp_(-1.0, 1.0).contiguous()


def picture_transform(size: int, grey: bool = False):
    """PIL picture -> 1 or 3 x size x size float input in [-1, 1]: shorter side
    resized to ``size``, centre cropped, normalised -- for training files and
    user pictures alike, so that Predict sees what training saw."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        *([v2.Grayscale()] if grey else []),
        v2.Resize(size, antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([MEAN] * (1 if grey else 3), [STD] * (1 if grey else 3)),
    ])


__all__ = ["DownloadError", "clear_errors", "guarded_download", "missing_sentence", "picture_transform",
           "pool_indices", "to_inputs"]
