"""MultiDigits: two overlapping digits on one canvas, one task for each.

The MultiMNIST construction of Sener & Koltun, "Multi-Task Learning as
Multi-Objective Optimization" (NeurIPS 2018, section 5), applied to the 8x8
digits that scikit-learn ships: two *different* digit images are placed on
one canvas, one at the top-left and one at the bottom-right, each shifted by
a random offset of up to ``max_shift`` pixels in each direction, and combined
by taking the pixel-wise maximum. They overlap in the middle.

- ``left``: the label of the top-left digit;
- ``right``: the label of the bottom-right digit.

The two tasks look alike but compete: the same trunk features must tell
apart two digits that cover each other, which is why this benchmark is used
to show the trade-off between tasks (the Pareto front).

To keep the test honest, the 1797 source images are first split 70/15/15
into train, validation and test pools, and each split's pictures are made
from its own pool only: no test digit was ever seen in training.

Pixel values: levels 0..16 as in ``digits``, normalised as
``(level / 16 - 0.5) / 0.5``.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec, split_indices
from .digits import crop_to_ink, ink_levels, ink_map, normalise, pad_to_square, source_digits
from .overlay import overlay_pairs, pick_pairs

DIGIT = 8  # side of one source digit, in pixels
CLASSES = tuple(str(d) for d in range(10))
TASKS = (
    TaskSpec("left", "classification", 10, CLASSES, description="The digit at the top-left."),
    TaskSpec("right", "classification", 10, CLASSES, description="The digit at the bottom-right."),
)
# Each UCI digit inks at least ~22% of its 8x8 (see digits.MIN_INK_FRACTION);
# two of them, less their overlap, set the least ink a user's picture gets.
MIN_INK_PER_DIGIT = 0.2 * DIGIT * DIGIT


def check_layout(canvas: int, max_shift: int) -> None:
    """Raise one clear ValueError for a canvas the two digits do not fit."""
    if not 0 <= max_shift <= 3:
        raise ValueError(f"multidigits: max_shift must be between 0 and 3 pixels, got {max_shift}.")
    smallest = DIGIT + 2 * max_shift
    if not smallest <= canvas <= 24:
        raise ValueError(
            f"multidigits: canvas must be between {smallest} and 24 pixels "
            f"(a digit is {DIGIT} pixels plus {max_shift} of shift on each side), got {canvas}."
        )


def check_options(n_samples: int, canvas: int, max_shift: int) -> None:
    """Raise one clear ValueError for an option outside its accepted range."""
    check_layout(canvas, max_shift)
    if not 20 <= n_samples <= 200_000:
        raise ValueError(f"multidigits: n_samples must be between 20 and 200000, got {n_samples}.")


def compose(
    rng: np.random.RandomState, pool: np.ndarray, n: int, canvas: int, max_shift: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pictures made from pairs of different images of ``pool`` (``overlay.py``).

    Returns the pictures (n x canvas x canvas levels) and the source indices
    of the top-left and bottom-right digits.
    """
    images, _ = source_digits()
    top_left, bottom_right = pick_pairs(rng, pool, n)
    return overlay_pairs(rng, images, top_left, bottom_right, canvas, max_shift), top_left, bottom_right


def build(seed: int = 0, n_samples: int = 3000, canvas: int = 14, max_shift: int = 1) -> MTLData:
    """Generate MultiDigits; the same seed and options give the same tensors."""
    check_options(n_samples, canvas, max_shift)
    _, labels = source_digits()
    rng = np.random.RandomState(seed)
    pools = split_indices(len(labels), seed)
    sizes = [len(idx) for idx in split_indices(n_samples, seed)]
    splits = {}
    for name, pool, size in zip(("train", "val", "test"), pools, sizes):
        pictures, tl, br = compose(rng, pool.numpy(), size, canvas, max_shift)
        x = normalise(torch.from_numpy(pictures)).unsqueeze(1).contiguous()
        splits[name] = Split(x, {"left": torch.from_numpy(labels[tl]), "right": torch.from_numpy(labels[br])})
    tasks = {t.name: t for t in TASKS}
    return MTLData("multidigits", tasks, splits["train"], splits["val"], splits["test"], "image", {})


def footprint(n_samples: int = 3000, canvas: int = 14, max_shift: int = 1) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    check_options(n_samples, canvas, max_shift)
    return n_samples, (1, canvas, canvas)


def preprocess(img: Image.Image, canvas: int = 14, max_shift: int = 1, **_options) -> torch.Tensor:
    """A user's picture of two digits as one input (1 x canvas x canvas).

    Expects two digits side by side, the left one a little higher than the
    right one, as in the training pictures. As for ``digits``: the ink is
    made bright on dark, the pair is cropped and centred on a square whose
    side leaves ``max_shift`` pixels of margin (the training pairs span about
    the canvas less that), then drawn as a binary bitmap four times finer and
    counted in 4x4 blocks into levels 0..16.
    """
    check_layout(canvas, max_shift)
    inner = canvas - 2 * max_shift
    square = pad_to_square(crop_to_ink(ink_map(img)), margin=max_shift / inner)
    min_fraction = 2 * MIN_INK_PER_DIGIT / canvas**2 * 0.9  # 0.9: the digits overlap a little
    levels = ink_levels(square, cells=canvas, min_fraction=min_fraction)
    return normalise(torch.from_numpy(levels)).unsqueeze(0)


INFO = DATASETS.register("multidigits")(
    DatasetInfo(
        name="multidigits",
        description=(
            "Two overlapping handwritten digits on one canvas (MultiMNIST, Sener & Koltun 2018): "
            "name the top-left one and the bottom-right one."
        ),
        tasks=TASKS,
        build=build,
        footprint=footprint,
        options={"n_samples": 3000, "canvas": 14, "max_shift": 1},
        option_help={
            "n_samples": "Number of two-digit pictures generated, split 70/15/15 into train, validation and test.",
            "canvas": f"Width and height of the picture in pixels; each digit is {DIGIT} pixels.",
            "max_shift": "Largest random shift of each digit from its corner, in pixels.",
        },
        input_kind="image",
        preprocess=preprocess,
        image_hint=(
            "Two digits side by side, written large with a thick pen, the left one a little higher "
            "than the right one so that they overlap slightly in the middle."
        ),
    )
)
