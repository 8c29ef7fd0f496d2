"""Padding to the UNet's multiple and mask alignment.

The image is padded on the right and bottom (edge pixels) to a multiple of 64 (latent side a
multiple of 8, as SD1.5's three downsamplings need) and cropped back after decoding. Masks are
brought to the image size first and padded the same way, so pixel (x, y) of a mask always lands
on pixel (x, y) of the image, whatever the size (stretching a mask to the padded size, as the
official SEDIC code does, shifts it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sedic_kit.imaging import resize_mask

MULTIPLE = 64
LATENT_SCALE = 8


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int

    @property
    def padded(self) -> tuple[int, int]:
        """``(height, width)`` after padding."""
        return math.ceil(self.height / MULTIPLE) * MULTIPLE, math.ceil(self.width / MULTIPLE) * MULTIPLE

    @property
    def latent(self) -> tuple[int, int]:
        """``(rows, cols)`` of the latent."""
        h, w = self.padded
        return h // LATENT_SCALE, w // LATENT_SCALE

    def pad_image(self, image: Image.Image) -> np.ndarray:
        """RGB image (``width`` x ``height``) -> float32 array in [0, 1], shape (padded h, padded w, 3)."""
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        h, w = self.padded
        return np.pad(arr, ((0, h - self.height), (0, w - self.width), (0, 0)), mode="edge")

    def crop(self, array: np.ndarray) -> Image.Image:
        """Float array in [0, 1] at the padded size -> 8-bit RGB image of the original size."""
        out = np.clip(np.round(array[: self.height, : self.width] * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(out, "RGB")

    def coverage(self, mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """Fraction of each cell of a ``rows`` x ``cols`` grid over the padded image that ``mask`` covers.

        ``mask`` is boolean at any resolution of the original image (e.g. the mask coder's grid);
        padding is outside every mask.
        """
        full = resize_mask(mask, self.height, self.width)
        h, w = self.padded
        if h % rows or w % cols:
            raise ValueError(f"grid {rows}x{cols} does not divide the padded size {h}x{w}")
        padded = np.zeros((h, w), dtype=np.float32)
        padded[: self.height, : self.width] = full
        return padded.reshape(rows, h // rows, cols, w // cols).mean(axis=(1, 3))

    def latent_mask(self, mask: np.ndarray) -> np.ndarray:
        """Binary M_j at latent resolution: latent cells at least half covered."""
        return self.coverage(mask, *self.latent) >= 0.5
