"""MultiMNIST and MultiFashion: two overlapping 28 x 28 items, one task each.

The benchmark of Sener & Koltun, "Multi-Task Learning as Multi-Objective
Optimization" (NeurIPS 2018, section 5), built from MNIST (LeCun et al.,
1998) and from Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): each picture
holds one item at the top-left and a different one at the bottom-right of a
36 x 36 canvas, overlapping in the middle (see ``overlay.py``), resized to
``image_size`` (28 in the paper).

- ``left``: the class of the top-left item;
- ``right``: the class of the bottom-right item.

The two tasks are alike but compete for the same trunk features, which is
why the benchmark is used to show the trade-off between tasks.

The files are read with ``torchvision.datasets.MNIST`` / ``FashionMNIST``
from ``MTL_HOME/torchvision/<MNIST|FashionMNIST>/raw`` (never downloaded
unless asked). Training and validation pictures are made from the training
files, test pictures from the test files only. The built tensors are cached
in the data folder, so the pictures are composed once per seed and options.

Pixel values: ink is bright on black as in MNIST, scaled to [0, 1] and
normalised as ``(x - 0.5) / 0.5``; ``preprocess`` turns a user's dark-on-light
drawing into the same form.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..images import to_grey_on_white
from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec
from .cache import cached_build, fingerprint
from .download import Progress
from .folders import torchvision_root
from .overlay import overlay_pairs, pick_pairs
from .tvsets import clear_errors, guarded_download, missing_sentence, picture_transform, pool_indices, to_inputs

ITEM = 28  # side of one MNIST picture
CANVAS = 36  # Sener & Koltun's canvas: room for two 28-pixel items that overlap
MAX_SHIFT = 3  # an item shifted further would touch the far edge and crowd the other one
# The four files torchvision's MNIST class reads, unpacked (its ``resources``
# without ".gz"; a test checks that they agree).
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# As ``torchvision.datasets.FashionMNIST.classes``; written out so that the
# tasks can be listed without importing torchvision (a test checks them).
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True)
class Source:
    """One of the two torchvision datasets the pictures are made from."""

    name: str  # our dataset name
    title: str  # as people write it
    folder: str  # torchvision's class name, which is also its folder under root
    classes: tuple[str, ...]
    item_word: str  # "digit", "item of clothing"

    def tv_class(self):
        import torchvision.datasets

        return getattr(torchvision.datasets, self.folder)

    def raw_folder(self) -> Path:
        return torchvision_root() / self.folder / "raw"


SOURCES = {
    "multimnist": Source("multimnist", "MNIST", "MNIST", tuple(str(d) for d in range(10)), "digit"),
    "multifashion": Source("multifashion", "Fashion-MNIST", "FashionMNIST", FASHION_CLASSES, "item of clothing"),
}


def tasks_of(source: Source) -> tuple[TaskSpec, ...]:
    return (
        TaskSpec("left", "classification", 10, source.classes, description=f"The {source.item_word} at the top-left."),
        TaskSpec("right", "classification", 10, source.classes,
                 description=f"The {source.item_word} at the bottom-right."),
    )


def check_options(name: str, n_samples: int, image_size: int, max_shift: int) -> None:
    """Raise one clear ValueError for an option outside its accepted range."""
    if not 20 <= n_samples <= 200_000:
        raise ValueError(f"{name}: n_samples must be between 20 and 200000, got {n_samples}.")
    if not 16 <= image_size <= CANVAS:
        raise ValueError(f"{name}: image_size must be between 16 and {CANVAS} pixels, got {image_size}.")
    if not 0 <= max_shift <= MAX_SHIFT:
        raise ValueError(f"{name}: max_shift must be between 0 and {MAX_SHIFT} pixels, got {max_shift}.")


def unpack_archives(source: Source) -> None:
    """Unpack ``X.gz`` files a user placed instead of ``X`` (torchvision reads
    only the unpacked files), with torchvision's own ``extract_archive``."""
    raw = source.raw_folder()
    for name in RAW_FILES:
        if not (raw / name).is_file() and (raw / f"{name}.gz").is_file():
            from torchvision.datasets.utils import extract_archive

            with clear_errors(source.title, raw):  # a damaged .gz or a read-only folder
                extract_archive(str(raw / f"{name}.gz"), str(raw))


def unavailable(source: Source) -> str | None:
    """None when the four files are there (plain or .gz), else what to place where."""
    raw = source.raw_folder()
    if all((raw / n).is_file() or (raw / f"{n}.gz").is_file() for n in RAW_FILES):
        return None
    return missing_sentence(source.title, RAW_FILES, raw, source.name, where_note=" (the .gz files work too)")


def read_source(source: Source) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(pictures uint8 N x 28 x 28, labels) of the training files and of the test files."""
    unpack_archives(source)
    with clear_errors(source.title, source.raw_folder()):
        tv_class = source.tv_class()
        parts = [tv_class(str(torchvision_root()), train=train, download=False) for train in (True, False)]
    return tuple((part.data.numpy(), part.targets.numpy().astype(np.int64)) for part in parts)  # type: ignore[return-value]


def compose(source: Source, seed: int, n_samples: int, image_size: int, max_shift: int) -> MTLData:
    """Make the pictures and their labels from the source files."""
    train_files, test_files = read_source(source)
    rng = np.random.RandomState(seed)
    plan = pool_indices(seed, n_samples, len(train_files[1]), len(test_files[1]))
    splits = {}
    for split, (pool, size) in plan.items():
        images, labels = test_files if split == "test" else train_files
        first, second = pick_pairs(rng, pool, size)
        pictures = overlay_pairs(rng, images, first, second, CANVAS, max_shift)
        x = to_inputs(torch.from_numpy(pictures).unsqueeze(1), image_size)
        splits[split] = Split(x, {"left": torch.from_numpy(labels[first]), "right": torch.from_numpy(labels[second])})
    tasks = {t.name: t for t in tasks_of(source)}
    return MTLData(source.name, tasks, splits["train"], splits["val"], splits["test"], "image", {})


def build(name: str, seed: int = 0, n_samples: int = 10_000, image_size: int = 28, max_shift: int = 2) -> MTLData:
    """The dataset ``name`` (multimnist or multifashion), from the cache when built before."""
    check_options(name, n_samples, image_size, max_shift)
    source = SOURCES[name]
    problem = unavailable(source)
    if problem:
        raise ValueError(problem)
    unpack_archives(source)  # before the fingerprint, so the key is the same on every later load
    key = {"seed": seed, "n_samples": n_samples, "image_size": image_size, "max_shift": max_shift,
           "files": fingerprint(source.raw_folder() / n for n in RAW_FILES)}
    return cached_build(name, key, lambda: compose(source, seed, n_samples, image_size, max_shift))


def download(name: str, progress: Progress | None = None) -> None:
    """Fetch the four .gz files from torchvision's mirrors, then let torchvision
    verify and unpack them."""
    source = SOURCES[name]

    def fetch(report: Progress) -> None:
        from .download import fetch_first

        tv_class = source.tv_class()
        for i, (archive, md5) in enumerate(tv_class.resources):
            urls = [mirror + archive for mirror in tv_class.mirrors]
            fetch_first(urls, source.raw_folder() / archive, md5, report, i / len(tv_class.resources),
                        1 / len(tv_class.resources))
        for train in (True, False):  # finds the verified archives and unpacks them
            tv_class(str(torchvision_root()), train=train, download=True)

    guarded_download(source.title, lambda: unavailable(source), fetch, progress)


def footprint(name: str, n_samples: int = 10_000, image_size: int = 28, max_shift: int = 2) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    check_options(name, n_samples, image_size, max_shift)
    return n_samples, (1, image_size, image_size)


def preprocess(img: Image.Image, image_size: int = 28, **_other_options) -> torch.Tensor:
    """A user's picture of two items as one input (1 x S x S in [-1, 1]).

    Drawings are dark ink on light paper, MNIST is bright ink on black: when
    the picture's border is light it is inverted. It is then padded to a
    square with its background and resized like the training canvas.
    """
    grey = np.asarray(to_grey_on_white(img), dtype=np.uint8)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:
        grey = 255 - grey
    h, w = grey.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.uint8)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = grey
    return picture_transform(image_size, grey=True)(Image.fromarray(square, "L")).clamp(-1.0, 1.0)


def register(source: Source) -> DatasetInfo:
    return DATASETS.register(source.name)(
        DatasetInfo(
            name=source.name,
            description=(
                f"Two overlapping {source.title} pictures on one canvas (Sener & Koltun 2018): "
                f"name the top-left {source.item_word} and the bottom-right one."
            ),
            tasks=tasks_of(source),
            build=functools.partial(build, source.name),
            footprint=functools.partial(footprint, source.name),
            options={"n_samples": 10_000, "image_size": 28, "max_shift": 2},
            option_help={
                "n_samples": "Number of two-item pictures made, split 70/15/15 into train, validation and test.",
                "image_size": f"Width and height of each picture in pixels (16 to {CANVAS}; the paper uses 28).",
                "max_shift": "Largest random shift of each item from its corner, in pixels (0 to 3).",
            },
            input_kind="image",
            preprocess=preprocess,
            image_hint=(
                f"Two {source.item_word} pictures side by side, the left one a little higher than the right one "
                "so that they overlap slightly in the middle; dark on light or bright on black."
            ),
            source="torchvision",
            available=functools.partial(unavailable, source),
            download=functools.partial(download, source.name),
        )
    )


INFOS = [register(source) for source in SOURCES.values()]
