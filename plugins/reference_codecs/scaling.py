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


def is_scaled_size(coded: tuple[int, int], size: tuple[int, int], max_scale: float) -> bool:
    """Whether ``coded`` is :func:`scaled_size` of ``size`` for some scale in ``[1, max_scale]``.

    Decoders check a coded size read from a file with this before allocating anything for it:
    it can never exceed the image size the header declares.
    """
    low, high = 1.0, float(max_scale)
    for n, full in zip(coded, size):
        if not 1 <= n <= full:
            return False
        # round(full / s) == n  <=>  n - 0.5 <= full / s <= n + 0.5 (n == 1 also takes anything smaller)
        low = max(low, full / (n + 0.5))
        if n > 1:
            high = min(high, full / (n - 0.5))
    return low <= high


def downscale(image: Image.Image, scale: float, method: DownscaleFilter = "lanczos") -> Image.Image:
    """``image`` at 1/``scale`` resolution (unchanged at scale 1)."""
    size = scaled_size(*image.size, scale)
    if size == image.size:
        return image
    return image.resize(size, FILTERS[method])
