"""Two pictures on one canvas: the MultiMNIST construction, for any square items.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization"
(NeurIPS 2018, section 5): for each picture a *different* one is chosen at
random; one is put at the top-left of a larger canvas and the other at the
bottom-right, so that they overlap in the middle, and the two are combined
pixel by pixel with the maximum (both are bright ink on black). The tasks are
the labels of the top-left item (``left``) and of the bottom-right one
(``right``). Their code uses a 36 x 36 canvas for 28 x 28 MNIST digits and
resizes the result back to 28 x 28; here each item is also shifted by up to
``max_shift`` pixels in each direction, so that position is not a give-away.

Works on any N x S x S array (MNIST digits, Fashion-MNIST clothes, ...).
"""
from __future__ import annotations

import numpy as np


def pick_pairs(rng: np.random.RandomState, pool: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of *different* entries of ``pool`` (indices into the items)."""
    if len(pool) < 2:
        raise ValueError("Two different pictures are needed to make one pair; the pool holds fewer.")
    first = rng.randint(0, len(pool), n)
    # Adding 1..len-1 modulo len never lands on the same entry again.
    second = (first + rng.randint(1, len(pool), n)) % len(pool)
    return pool[first], pool[second]


def place(items: np.ndarray, rows: np.ndarray, cols: np.ndarray, canvas: int) -> np.ndarray:
    """N x canvas x canvas arrays with item i pasted with its top-left at (rows[i], cols[i]).

    Loops over the few distinct positions, not over the items.
    """
    size = items.shape[-1]
    out = np.zeros((len(items), canvas, canvas), dtype=items.dtype)
    for r in np.unique(rows):
        for c in np.unique(cols):
            sel = (rows == r) & (cols == c)
            out[sel, r : r + size, c : c + size] = items[sel]
    return out


def overlay_pairs(rng: np.random.RandomState, items: np.ndarray, first: np.ndarray, second: np.ndarray,
                  canvas: int, max_shift: int) -> np.ndarray:
    """items[first] at the top-left and items[second] at the bottom-right of a
    ``canvas``-sized picture, each shifted by up to ``max_shift`` pixels; the
    pixel-wise maximum of the two."""
    size = items.shape[-1]
    if canvas < size + 2 * max_shift:
        raise ValueError(f"A canvas of {canvas} pixels cannot hold a {size}-pixel item shifted by {max_shift}.")
    n = len(first)

    def shifts() -> np.ndarray:
        return rng.randint(-max_shift, max_shift + 1, n)

    near, far = max_shift, canvas - size - max_shift  # unshifted corners
    top_left = place(items[first], near + shifts(), near + shifts(), canvas)
    bottom_right = place(items[second], far + shifts(), far + shifts(), canvas)
    return np.maximum(top_left, bottom_right)
