"""Offline builder of the ``cabac`` context prior (``prior.npz``) from synthetic shapes.

Random smooth blobs, ellipses and polygons are drawn at Kodak size, reduced to the 1/8 grid
with the same helper the coder uses, and the template contexts' pixel counts are accumulated.
No real masks are involved. Usage: ``python -m sedic_plugins.mask_coders.cabac.prior plugins/mask_coders/cabac/prior.npz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from sedic_kit.masks import to_grid

WIDTH, HEIGHT, SCALE, SHAPES = 768, 512, 8, 3000


def shape(rng: np.random.Generator) -> np.ndarray:
    """One random full-size mask."""
    kind = rng.integers(3)
    if kind == 0:
        noise = rng.random((HEIGHT // 16, WIDTH // 16)).astype(np.float32)
        blur = cv2.GaussianBlur(cv2.resize(noise, (WIDTH, HEIGHT)), (0, 0), float(rng.uniform(5, 40)))
        return blur > np.quantile(blur, rng.uniform(0.4, 0.95))
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    if kind == 1:
        center = (int(rng.integers(WIDTH)), int(rng.integers(HEIGHT)))
        axes = (int(rng.integers(10, WIDTH // 2)), int(rng.integers(10, HEIGHT // 2)))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        pts = rng.integers(0, (WIDTH, HEIGHT), size=(int(rng.integers(3, 12)), 2)).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(pts)], 1)
    return mask > 0


def contexts(grid: np.ndarray, template: tuple[tuple[int, int], ...], pad: int) -> np.ndarray:
    """Template context index of every pixel of a grid."""
    rows, cols = grid.shape
    padded = np.zeros((rows + 2 * pad, cols + 2 * pad), np.int64)
    padded[pad : pad + rows, pad : pad + cols] = grid
    index = np.zeros((rows, cols), np.int64)
    for i, (dr, dc) in enumerate(template):
        index |= padded[pad + dr : pad + dr + rows, pad + dc : pad + dc + cols] << i
    return index


def build(seed: int = 0) -> np.ndarray:
    from . import PAD, PRIOR_BITS, TEMPLATE

    rng = np.random.default_rng(seed)
    counts = np.zeros((1 << PRIOR_BITS, 2), np.int64)
    for _ in range(SHAPES):
        grid = to_grid(shape(rng), WIDTH, HEIGHT, SCALE)
        idx = contexts(grid, TEMPLATE[:PRIOR_BITS], PAD).ravel()
        np.add.at(counts, (idx, grid.ravel().astype(np.int64)), 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    np.savez_compressed(args.output, counts=build().astype(np.uint32))


if __name__ == "__main__":
    main()
