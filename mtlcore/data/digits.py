"""Digits: scikit-learn's 8x8 handwritten digits, four tasks per image.

The 1797 images are the test part of the UCI "Optical Recognition of
Handwritten Digits" data (Alpaydin & Kaynak, 1998), shipped inside
scikit-learn, so nothing is downloaded. Each was made from a 32x32 black and
white bitmap of a digit, normalised so that its height fills the bitmap, by
counting the "on" pixels in each 4x4 block: every pixel is a level 0..16.

Tasks on the same picture:

- ``digit``: which digit, 10 classes;
- ``parity``: even or odd -- a coarser grouping of the same classes;
- ``big``: 0-4 or 5-9 -- another grouping, less natural for the eye;
- ``ink``: how much ink the digit uses (regression), nearly free to learn.

The groupings are deterministic functions of ``digit``: a model that knows
the digit knows them, which makes them a clean example of related tasks.

Pixel values: ``level / 16`` in [0, 1], normalised as ``(x - 0.5) / 0.5``.
``preprocess`` repeats the UCI procedure on a user's picture.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image

from ..images import to_grey_on_white
from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec, split_indices, standardise_regression

LEVELS = 16  # an 8x8 pixel counts the on-pixels of a 4x4 block: 0..16
BLOCK = 4
TASKS = (
    TaskSpec("digit", "classification", 10, tuple(str(d) for d in range(10)), description="Which digit is written."),
    TaskSpec("parity", "classification", 2, ("even", "odd"), description="Whether the digit is even or odd."),
    TaskSpec("big", "classification", 2, ("0-4", "5-9"), description="Whether the digit is 5 or more."),
    TaskSpec("ink", "regression", description="Fraction of the picture covered by ink (sum of levels / (64 * 16))."),
)
# In the UCI data 98% of digits have between a quarter and a third of their
# 8x8 levels inked; a drawing made with a thin pen has far less, so its
# strokes are thickened until it reaches this fraction (see ``ink_levels``).
MIN_INK_FRACTION = 0.22


@functools.lru_cache(maxsize=1)
def source_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled images (1797 x 8 x 8, levels 0..16, float32) and labels."""
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


def normalise(levels: torch.Tensor) -> torch.Tensor:
    """Levels 0..16 -> [-1, 1]: background -1, full ink +1."""
    return (levels / LEVELS - 0.5) / 0.5


def digit_targets(labels: np.ndarray, images: np.ndarray) -> dict[str, torch.Tensor]:
    """Every task's target for each image, from its digit label and pixels."""
    digit = torch.from_numpy(labels)
    return {
        "digit": digit,
        "parity": digit % 2,
        "big": (digit >= 5).long(),
        "ink": torch.from_numpy(images.sum(axis=(1, 2)) / (64 * LEVELS)).float(),
    }


def build(seed: int = 0, n_samples: int = 0) -> MTLData:
    """The digits dataset: all 1797 images, or a seeded random ``n_samples``."""
    images, labels = source_digits()
    if n_samples:
        if not 20 <= n_samples <= len(images):
            raise ValueError(
                f"digits: n_samples must be 0 (all) or between 20 and {len(images)}, got {n_samples}."
            )
        keep = np.random.RandomState(seed).permutation(len(images))[:n_samples]
        images, labels = images[keep], labels[keep]
    x = normalise(torch.from_numpy(images)).unsqueeze(1).contiguous()  # N x 1 x 8 x 8
    y = digit_targets(labels, images)
    train, val, test = split_indices(len(images), seed)
    splits = {name: Split(x[idx], {t: v[idx] for t, v in y.items()}) for name, idx in
              (("train", train), ("val", val), ("test", test))}
    tasks = {t.name: t for t in TASKS}
    stats = standardise_regression(splits, tasks)
    return MTLData("digits", tasks, splits["train"], splits["val"], splits["test"], "image", stats)


# --- A user's picture -> the UCI representation (shared with multidigits) ---

def border_pixels(a: np.ndarray) -> np.ndarray:
    """The pixels along the four edges of a 2-D array: mostly paper."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def ink_map(img: Image.Image) -> np.ndarray:
    """H x W float array: 0 where there is paper, up to 1 where there is ink.

    The UCI digits are bright ink on a dark ground. A picture whose border is
    mostly light (dark pen on white paper, the usual drawing) is inverted;
    then the paper's level is subtracted and the contrast stretched, so that
    grey paper in a photo counts as no ink.
    """
    grey = np.asarray(to_grey_on_white(img), dtype=np.float32) / 255.0
    if np.median(border_pixels(grey)) > 0.5:
        grey = 1.0 - grey
    paper = float(np.median(border_pixels(grey)))
    top = float(grey.max())
    if top - paper < 0.1:  # no visible ink at all: a blank picture
        return np.zeros_like(grey)
    return np.clip((grey - paper) / (top - paper), 0.0, 1.0)


def crop_to_ink(ink: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """The smallest rectangle holding every pixel with ink above ``threshold``."""
    rows, cols = np.nonzero(ink > threshold)
    if rows.size == 0:
        return ink
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def pad_to_square(ink: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``ink`` centred on a square of no-ink, with ``margin`` (a fraction of
    the longer side) added on every side; the aspect ratio is kept."""
    h, w = ink.shape
    side = max(h, w)
    pad = int(round(margin * side))
    square = np.zeros((side + 2 * pad, side + 2 * pad), dtype=np.float32)
    top, left = pad + (side - h) // 2, pad + (side - w) // 2
    square[top : top + h, left : left + w] = ink
    return square


def thicken(bitmap: np.ndarray, min_fraction: float, max_steps: int = 4) -> np.ndarray:
    """Dilate a binary bitmap by one pixel at a time until at least
    ``min_fraction`` of it is on: thin pen strokes look like the thick
    scanned strokes of the training digits."""
    for _ in range(max_steps):
        if bitmap.mean() >= min_fraction or not bitmap.any():
            break
        p = np.pad(bitmap, 1)
        bitmap = np.max([p[i : i + bitmap.shape[0], j : j + bitmap.shape[1]] for i in range(3) for j in range(3)], axis=0)
    return bitmap


def ink_levels(square_ink: np.ndarray, cells: int, min_fraction: float) -> np.ndarray:
    """The UCI step: a (4 cells) x (4 cells) binary bitmap, then the count of
    on-pixels in each 4x4 block -- a cells x cells array of levels 0..16."""
    size = cells * BLOCK
    resized = Image.fromarray(square_ink.astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BOX if square_ink.shape[0] >= size else Image.Resampling.BILINEAR
    )
    bitmap = thicken(np.asarray(resized) > 0.5, min_fraction)
    return bitmap.reshape(cells, BLOCK, cells, BLOCK).sum(axis=(1, 3)).astype(np.float32)


def footprint(n_samples: int = 0) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    if n_samples and not 20 <= n_samples <= 1797:
        raise ValueError(f"digits: n_samples must be 0 (all) or between 20 and 1797, got {n_samples}.")
    return n_samples or 1797, (1, 8, 8)


def preprocess(img: Image.Image, **_options) -> torch.Tensor:
    """A user's picture of one digit as one input (1 x 8 x 8, in [-1, 1]).

    Mimics how the UCI digits were made: ink made bright on dark, cropped to
    the digit, centred on a square so that its longer side (usually its
    height) fills the 32x32 bitmap, as in the data, then thresholded and
    counted in 4x4 blocks into levels 0..16.
    """
    square = pad_to_square(crop_to_ink(ink_map(img)))
    levels = ink_levels(square, cells=8, min_fraction=MIN_INK_FRACTION)
    return normalise(torch.from_numpy(levels)).unsqueeze(0)


INFO = DATASETS.register("digits")(
    DatasetInfo(
        name="digits",
        description=(
            "scikit-learn's 1797 handwritten digits (8x8): the digit, its parity, whether it is 5 or more, "
            "and how much ink it uses."
        ),
        tasks=TASKS,
        build=build,
        footprint=footprint,
        options={"n_samples": 0},
        option_help={"n_samples": "Number of images used, drawn at random from the 1797; 0 uses them all."},
        input_kind="image",
        preprocess=preprocess,
        image_hint="One digit, 0 to 9, written large with a thick pen, dark on light or light on dark.",
    )
)
