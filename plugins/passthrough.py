"""Weight-free trivial plugins: ``none`` describer, ``passthrough`` grounder, ``box`` segmenter."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sedic_kit.describe import DescriptionOptions
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.payload import Box, Payload, SourceImage
from sedic_kit.roles import Describer, Grounder, Segmenter


class NoDescriber(Describer[DescriptionOptions]):
    """No caption, no objects: the decoder restores from the reference image alone."""

    name = "none"

    def describe(self, source: SourceImage) -> Payload:
        return Payload(*source.size)


def clamp_box(box: Box | None, width: int, height: int) -> Box:
    """``box`` clipped to the image; the whole frame when absent or empty after clipping."""
    if box is None:
        return (0, 0, width, height)
    x0, y0 = max(0, min(int(box[0]), width)), max(0, min(int(box[1]), height))
    x1, y1 = max(0, min(int(box[2]), width)), max(0, min(int(box[3]), height))
    if x1 <= x0 or y1 <= y0:
        return (0, 0, width, height)
    return (x0, y0, x1, y1)


class PassthroughGrounder(Grounder):
    """Trusts the describer: keeps every object, clips its box (whole frame when missing)."""

    name = "passthrough"

    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        return payload.with_objects([replace(o, box=clamp_box(o.box, w, h)) for o in payload.objects])


def box_mask(box: Box | None, width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = clamp_box(box, width, height)
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


class BoxSegmenter(Segmenter):
    """The object's box as its mask."""

    name = "box"

    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        return payload.with_objects([replace(o, mask=box_mask(o.box, w, h)) for o in payload.objects])


@hookimpl
def register_describers(register: Register) -> None:
    register(NoDescriber)


@hookimpl
def register_grounders(register: Register) -> None:
    register(PassthroughGrounder)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(BoxSegmenter)
