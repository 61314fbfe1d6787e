"""Shapes: coloured shapes on backgrounds, six tasks read off one picture.

Each image holds one filled shape (circle, square, triangle or star) in one
colour (red, green, blue or yellow, with a little variation of shade), at a
random size, position and rotation, on one of four backgrounds (plain grey or
white, stripes, dots or noise). Six tasks are read off the same picture:

- ``shape``, ``color``: classification, and clearly related to each other
  in what they need (both look at the shape's pixels);
- ``size``, ``x``, ``y``: regression in pixels, where the shape is and how big;
- ``background``: classification, drawn *independently* of every other
  label. It needs features of the empty part of the picture, so sharing a
  small trunk with it can hurt the shape tasks -- negative transfer, on
  purpose.

The dataset is generated from the seed, so nothing is downloaded. Shapes are
drawn with PIL at four times the resolution and box-averaged down, which
antialiases their edges the way a resized drawing is antialiased.

Pixel values: RGB in [0, 1], normalised as ``(x - 0.5) / 0.5`` to [-1, 1];
``preprocess`` does exactly the same to a user's picture.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..images import to_rgb_on_white
from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec, split_indices, standardise_regression

SHAPES = ("circle", "square", "triangle", "star")
COLORS = ("red", "green", "blue", "yellow")
BACKGROUNDS = ("plain", "stripes", "dots", "noise")

# Per colour, the range of each of R, G, B (in [0, 1]) that the fill is drawn
# from: pure paint-program colours such as (1, 0, 0) lie inside their range,
# and the ranges never overlap, so the colour label is never ambiguous.
COLOR_RANGES = {
    "red": ((0.75, 1.0), (0.0, 0.2), (0.0, 0.2)),
    "green": ((0.0, 0.25), (0.5, 1.0), (0.0, 0.25)),
    "blue": ((0.0, 0.2), (0.0, 0.3), (0.65, 1.0)),
    "yellow": ((0.8, 1.0), (0.75, 1.0), (0.0, 0.25)),
}

MIN_SIZE, MAX_SIZE = 16, 64
# Patterns swing this far (half the range, in [0, 1] units) either side of
# their mean grey: visible enough to classify, faint enough not to hide edges.
PATTERN_HALF_CONTRAST = (0.08, 0.14)
SUPERSAMPLE = 4  # draw at 4x and box-average: antialiased edges
# Shapes' radii run from this fraction of the image side (at least 4 px) to
# 0.4 of it. Smaller shapes are cheap to draw but slow to learn: at 5 px a
# star, a circle and a square differ by a handful of pixels, and a small CNN
# needs several times more epochs to tell them apart.
SMALLEST_SHAPE = 0.25
STAR_INNER_RATIO = 0.45  # inner / outer radius; fatter than a pentagram (0.38) so it reads at 32 px

TASKS = (
    TaskSpec("shape", "classification", len(SHAPES), SHAPES, description="Which shape is drawn."),
    TaskSpec("color", "classification", len(COLORS), COLORS, description="The colour the shape is filled with."),
    TaskSpec(
        "size", "regression", unit="px",
        description="Radius of the smallest circle around the shape (a square's half-diagonal), in pixels.",
    ),
    TaskSpec("x", "regression", unit="px", description="Horizontal centre of the shape, in pixels from the left edge."),
    TaskSpec("y", "regression", unit="px", description="Vertical centre of the shape, in pixels from the top edge."),
    TaskSpec(
        "background", "classification", len(BACKGROUNDS), BACKGROUNDS,
        description="The pattern behind the shape; independent of every other label.",
    ),
)


def check_image_size(image_size: int) -> None:
    """Raise one clear ValueError for an image size outside 16..64."""
    if not MIN_SIZE <= image_size <= MAX_SIZE:
        raise ValueError(
            f"shapes: image_size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {image_size}."
        )


def check_options(image_size: int, n_samples: int, label_noise: float) -> None:
    """Raise one clear ValueError for an option outside its accepted range."""
    check_image_size(image_size)
    if not 20 <= n_samples <= 100_000:
        raise ValueError(f"shapes: n_samples must be between 20 and 100000, got {n_samples}.")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"shapes: label_noise is a fraction in [0, 1), got {label_noise}.")


def size_range(image_size: int) -> tuple[float, float]:
    """Smallest and largest shape radius in pixels: big enough to tell a star
    from a circle, small enough to leave room to move around."""
    return max(4.0, SMALLEST_SHAPE * image_size), 0.4 * image_size


def sample_labels(rng: np.random.RandomState, n: int, image_size: int) -> dict[str, np.ndarray]:
    """Every label of ``n`` images, each drawn independently and uniformly."""
    lo, hi = size_range(image_size)
    size = rng.uniform(lo, hi, n)
    # Keep the circle around the shape (hence the whole shape) inside the image.
    margin = size + 0.5
    return {
        "shape": rng.randint(0, len(SHAPES), n),
        "color": rng.randint(0, len(COLORS), n),
        "background": rng.randint(0, len(BACKGROUNDS), n),
        "size": size,
        "x": rng.uniform(margin, image_size - margin),
        "y": rng.uniform(margin, image_size - margin),
        "angle": rng.uniform(0.0, 2 * math.pi, n),
    }


def polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a square, triangle or star whose outer vertices lie on the
    circle of radius ``r`` around (cx, cy), turned by ``angle`` radians."""
    if shape == "square":
        radii, n = [r], 4
    elif shape == "triangle":
        radii, n = [r], 3
    else:  # star: outer and inner vertices alternate
        radii, n = [r, r * STAR_INNER_RATIO], 10
    return [
        (cx + radii[k % len(radii)] * math.sin(angle + 2 * math.pi * k / n),
         cy - radii[k % len(radii)] * math.cos(angle + 2 * math.pi * k / n))
        for k in range(n)
    ]


def shape_masks(labels: dict[str, np.ndarray], image_size: int) -> np.ndarray:
    """N x S x S coverage in [0, 1] of each image's shape (1 inside, 0 outside)."""
    s, big = SUPERSAMPLE, image_size * SUPERSAMPLE
    masks = np.empty((len(labels["shape"]), image_size, image_size), dtype=np.float32)
    for i in range(len(masks)):
        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        cx, cy, r = labels["x"][i] * s, labels["y"][i] * s, labels["size"][i] * s
        kind = SHAPES[labels["shape"][i]]
        if kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        else:
            draw.polygon(polygon(kind, cx, cy, r, labels["angle"][i]), fill=255)
        masks[i] = np.asarray(canvas.reduce(s), dtype=np.float32) / 255.0
    return masks


def fill_colors(rng: np.random.RandomState, color: np.ndarray) -> np.ndarray:
    """N x 3 RGB fills, each drawn uniformly from its colour's ranges."""
    ranges = np.array([COLOR_RANGES[c] for c in COLORS], dtype=np.float32)[color]  # N x 3 x 2
    return ranges[..., 0] + rng.uniform(size=ranges.shape[:2]) * (ranges[..., 1] - ranges[..., 0])


def backgrounds(rng: np.random.RandomState, kind: np.ndarray, image_size: int) -> np.ndarray:
    """N x 3 x S x S backgrounds, each kind built for all its images at once.

    All four are grey with a faint tint (like real paper) and keep a moderate
    contrast, so that the shape's colour stays readable on every one of them.
    """
    n = len(kind)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)[:, None] + 0.5
    # Every parameter is drawn for every image (used or not), so the random
    # stream does not depend on which kinds happen to be in the batch.
    # Plain: any grey from dark to white; a third are pure white, so a shape
    # drawn on a blank canvas or on white paper is a typical picture.
    plain = np.where(rng.uniform(size=n) < 0.3, 1.0, rng.uniform(0.1, 1.0, n))
    # Patterns alternate between two greys around a mean level.
    mean = rng.uniform(0.3, 0.85, n)
    half_contrast = rng.uniform(*PATTERN_HALF_CONTRAST, n)
    period, theta, phase = rng.uniform(4.0, 8.0, n), rng.uniform(0.0, math.pi, n), rng.uniform(0.0, 2 * math.pi, n)
    spacing, radius = rng.uniform(4.0, 7.0, n), rng.uniform(0.9, 1.6, n)
    offset = rng.uniform(0.0, 1.0, (2, n)) * spacing
    noise_std = rng.uniform(0.08, 0.15, n)

    def per_image(values: np.ndarray, sel: np.ndarray) -> np.ndarray:
        return values[sel].astype(np.float32)[:, None, None]  # broadcasts over S x S

    grey = np.empty((n, image_size, image_size), dtype=np.float32)
    plain_sel, stripe_sel, dot_sel, noise_sel = (kind == k for k in range(len(BACKGROUNDS)))
    grey[plain_sel] = per_image(plain, plain_sel)

    s = stripe_sel
    along = xx * np.cos(per_image(theta, s)) + yy * np.sin(per_image(theta, s))
    wave = np.sin(2 * math.pi * along / per_image(period, s) + per_image(phase, s))
    band = np.clip(0.5 + 2.0 * wave, 0.0, 1.0)  # soft-edged bands
    grey[s] = per_image(mean, s) + per_image(half_contrast, s) * (2.0 * band - 1.0)

    s = dot_sel
    gap = per_image(spacing, s)
    dx = (xx + per_image(offset[0], s)) % gap - gap / 2
    dy = (yy + per_image(offset[1], s)) % gap - gap / 2
    dot = np.clip(per_image(radius, s) - np.sqrt(dx**2 + dy**2) + 0.5, 0.0, 1.0)
    grey[s] = per_image(mean, s) + per_image(half_contrast, s) * (2.0 * dot - 1.0)

    s = noise_sel
    grain = rng.standard_normal((n, image_size, image_size)).astype(np.float32)[s]
    grey[s] = per_image(mean, s) + per_image(noise_std, s) * grain

    tint = rng.uniform(-0.03, 0.03, (n, 3, 1, 1)).astype(np.float32)
    return np.clip(grey[:, None] + tint, 0.0, 1.0)


def render(
    rng: np.random.RandomState, labels: dict[str, np.ndarray], image_size: int, chunk: int = 2048
) -> np.ndarray:
    """N x 3 x S x S images in [0, 1]: the shape painted over its background.

    Works through ``chunk`` images at a time so that the whole-batch
    background arrays stay small however many images are asked for.
    """
    n = len(labels["shape"])
    images = np.empty((n, 3, image_size, image_size), dtype=np.float32)
    for start in range(0, n, chunk):
        part = {k: v[start : start + chunk] for k, v in labels.items()}
        alpha = shape_masks(part, image_size)[:, None]
        fill = fill_colors(rng, part["color"])[:, :, None, None]
        back = backgrounds(rng, part["background"], image_size)
        images[start : start + chunk] = back * (1.0 - alpha) + fill * alpha
    return images


def normalise(images01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]: centred inputs make the first layer's job easier."""
    return (images01 - 0.5) / 0.5


def add_label_noise(
    rng: np.random.RandomState, labels: np.ndarray, num_classes: int, fraction: float
) -> np.ndarray:
    """A copy of ``labels`` with ``fraction`` of them changed to another class."""
    noisy = labels.copy()
    k = int(round(fraction * len(labels)))
    which = rng.choice(len(labels), size=k, replace=False)
    noisy[which] = (noisy[which] + rng.randint(1, num_classes, k)) % num_classes
    return noisy


def build(seed: int = 0, image_size: int = 32, n_samples: int = 3000, label_noise: float = 0.0) -> MTLData:
    """Generate the shapes dataset; the same seed and options give the same tensors."""
    check_options(image_size, n_samples, label_noise)
    rng = np.random.RandomState(seed)
    labels = sample_labels(rng, n_samples, image_size)
    x = normalise(torch.from_numpy(render(rng, labels, image_size)))
    y = {
        t.name: torch.from_numpy(labels[t.name]).to(torch.int64 if t.kind == "classification" else torch.float32)
        for t in TASKS
    }

    train, val, test = split_indices(n_samples, seed)
    splits = {name: Split(x[idx], {t: v[idx] for t, v in y.items()}) for name, idx in
              (("train", train), ("val", val), ("test", test))}
    if label_noise > 0:
        # Only training labels are corrupted: validation and test keep
        # measuring how well the *true* labels are predicted.
        for t in TASKS:
            if t.kind == "classification":
                noisy = add_label_noise(rng, splits["train"].y[t.name].numpy(), t.num_classes, label_noise)
                splits["train"].y[t.name] = torch.from_numpy(noisy)

    tasks = {t.name: t for t in TASKS}
    stats = standardise_regression(splits, tasks)
    return MTLData("shapes", tasks, splits["train"], splits["val"], splits["test"], "image", stats)


def footprint(image_size: int = 32, n_samples: int = 3000, label_noise: float = 0.0) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    check_options(image_size, n_samples, label_noise)
    return n_samples, (3, image_size, image_size)


def preprocess(img: Image.Image, image_size: int = 32, **_other_options) -> torch.Tensor:
    """A user's picture as one input (3 x S x S, in [-1, 1]) of this dataset.

    The picture is padded to a square with the colour of its border (so a
    phone photo is not squashed), shrunk to ``image_size`` by area averaging
    (as the training shapes were), and normalised like the training images.
    Other dataset options are accepted and ignored, so a caller can pass all
    of a run's dataset options.
    """
    check_image_size(image_size)
    rgb = np.asarray(to_rgb_on_white(img), dtype=np.float32) / 255.0
    h, w, _ = rgb.shape
    if h != w:
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        side = max(h, w)
        square = np.empty((side, side, 3), dtype=np.float32)
        square[:] = np.median(border, axis=0)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = rgb
        rgb = square
    pil = Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), "RGB")
    shrinking = pil.width >= image_size
    pil = pil.resize((image_size, image_size), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return normalise(x)


INFO = DATASETS.register("shapes")(
    DatasetInfo(
        name="shapes",
        description=(
            "Coloured shapes on plain or patterned backgrounds: shape, colour, size and position "
            "are related tasks; the background is independent of all of them."
        ),
        tasks=TASKS,
        build=build,
        footprint=footprint,
        options={"image_size": 32, "n_samples": 3000, "label_noise": 0.0},
        option_help={
            "image_size": f"Width and height of each image in pixels ({MIN_SIZE} to {MAX_SIZE}).",
            "n_samples": "Number of images generated, split 70/15/15 into train, validation and test.",
            "label_noise": "Fraction of training labels of each classification task replaced by a wrong class.",
        },
        input_kind="image",
        preprocess=preprocess,
        image_hint=(
            "One shape (circle, square, triangle or star), drawn filled in red, green, blue or yellow "
            "on a plain background, spanning half to three quarters of the picture's width."
        ),
    )
)
