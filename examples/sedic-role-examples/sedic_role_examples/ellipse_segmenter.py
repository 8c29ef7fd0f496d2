"""Segmenter ``ellipse``: each object's mask is the ellipse inscribed in its box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from sedic_kit import Payload, Segmenter, SourceImage, hookimpl


class EllipseSegmenter(Segmenter):
    """Full-size boolean masks (H x W), one per object, from the boxes the grounder left."""

    name = "ellipse"

    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        y, x = np.mgrid[0:h, 0:w]
        objects = []
        for obj in payload.objects:
            x0, y0, x1, y1 = obj.box or (0, 0, w, h)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            rx, ry = max(0.5, (x1 - x0) / 2), max(0.5, (y1 - y0) / 2)  # an empty box still gets a dot
            objects.append(replace(obj, mask=((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1))
        return payload.with_objects(objects)


@hookimpl
def register_segmenters(register: Callable[[type], None]) -> None:
    register(EllipseSegmenter)
