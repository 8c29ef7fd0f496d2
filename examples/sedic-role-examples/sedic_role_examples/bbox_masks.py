"""Mask coder ``bbox``: each mask as its bounding box, 4 x uint16 (lossy, 64 bits per object)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from sedic_kit import FormatError, MaskCoder, hookimpl


class BoxMasks(MaskCoder):
    """Masks become filled rectangles at full resolution."""

    name = "bbox"
    version = 1

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        boxes = []
        for mask in masks:
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if xs.size else [0, 0, 0, 0])
        return np.asarray(boxes, dtype="<u2").reshape(-1, 4).tobytes()

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        if len(data) != 8 * count:  # check before allocating anything
            raise FormatError(f"masks 'bbox': {len(data)} bytes for {count} objects, expected {8 * count}")
        masks = []
        for x0, y0, x1, y1 in np.frombuffer(data, dtype="<u2").reshape(count, 4):
            mask = np.zeros((height, width), bool)
            mask[min(y0, height) : min(y1, height), min(x0, width) : min(x1, width)] = True
            masks.append(mask)
        return masks


@hookimpl
def register_entropy_coders(register: Callable[[type], None]) -> None:
    register(BoxMasks)
