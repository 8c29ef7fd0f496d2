"""The transmitted masks drawn over a reconstruction (the report's "what was sent" view)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..imaging import resize_mask
from ..payload import Payload

COLORS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))
"""One color per object, in payload order (the report's legend uses the same)."""
ALPHA = 0.45


def color(index: int) -> tuple[int, int, int]:
    return COLORS[index % len(COLORS)]


def mask_overlay(image: Image.Image, payload: Payload) -> Image.Image:
    """``image`` with each object's decoded mask (resized to the image) tinted in its color and outlined."""
    out = np.asarray(image.convert("RGB"), dtype=np.float64).copy()
    h, w = out.shape[:2]
    for i, obj in enumerate(payload.objects):
        if obj.mask is None:
            continue
        mask = resize_mask(np.asarray(obj.mask, dtype=bool), h, w)
        tint = np.array(color(i), dtype=np.float64)
        out[mask] = (1 - ALPHA) * out[mask] + ALPHA * tint
        edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
        out[edge] = tint
    return Image.fromarray(np.round(out).astype(np.uint8), "RGB")
