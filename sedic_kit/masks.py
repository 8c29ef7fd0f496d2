"""Mask geometry shared by mask coders and restorers."""

from __future__ import annotations

import math

import numpy as np

from .imaging import resize_mask


def grid_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """``(rows, cols)`` of the grid a mask of ``width`` x ``height`` is coded on at ``1/scale``."""
    return max(1, math.ceil(height / scale)), max(1, math.ceil(width / scale))


def to_grid(mask: np.ndarray, width: int, height: int, scale: int) -> np.ndarray:
    """A full-size mask reduced to the coding grid (area majority)."""
    return resize_mask(mask, *grid_size(width, height, scale))
