"""Downscaling shared by the reference codecs: code at 1/s resolution, the restorer upsamples."""

from __future__ import annotations

from typing import Literal

from PIL import Image

DownscaleFilter = Literal["lanczos", "bicubic", "box"]
FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
}


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The coded size of a ``width`` x ``height`` image at 1/``scale`` (what the decoder recomputes)."""
    return max(1, round(width / scale)), max(1, round(height / scale))


def downscale(image: Image.Image, scale: float, method: DownscaleFilter = "lanczos") -> Image.Image:
    """``image`` at 1/``scale`` resolution (unchanged at scale 1)."""
    size = scaled_size(*image.size, scale)
    if size == image.size:
        return image
    return image.resize(size, FILTERS[method])
