"""The ``box`` segmenter: each object's box is its mask."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sedic_kit.payload import Box, Payload, SourceImage
from sedic_kit.roles import Segmenter

from ..shared.boxes import clamp_box


def box_mask(box: Box | None, width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = clamp_box(box, width, height)
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


class BoxSegmenter(Segmenter):
    """The object's box as its mask."""

    name = "box"

    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        return payload.with_objects([replace(o, mask=box_mask(o.box, *source.size)) for o in payload.objects])

