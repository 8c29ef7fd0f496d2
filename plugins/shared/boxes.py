"""Box geometry shared by grounders and segmenters."""

from __future__ import annotations

from sedic_kit.payload import Box


def clamp_box(box: Box | None, width: int, height: int) -> Box:
    """``box`` clipped to the image; the whole frame when absent or empty after clipping."""
    if box is None:
        return (0, 0, width, height)
    x0, y0 = max(0, min(int(box[0]), width)), max(0, min(int(box[1]), height))
    x1, y1 = max(0, min(int(box[2]), width)), max(0, min(int(box[3]), height))
    if x1 <= x0 or y1 <= y0:
        return (0, 0, width, height)
    return (x0, y0, x1, y1)
