"""Grounder ``min-area``: drops objects whose box is too small to matter, clips the others.

An object without a box (the describer gave none) gets the whole frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pydantic import Field

from sedic_kit import Grounder, Options, Payload, SourceImage, hookimpl


class AreaOptions(Options):
    min_area: float = Field(0.01, ge=0.0, le=1.0, description="smallest box, as a fraction of the image")


class MinAreaGrounder(Grounder[AreaOptions]):
    """Keeps objects whose (clipped) box covers at least ``min_area`` of the image."""

    name = "min-area"

    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        kept = []
        for obj in payload.objects:
            x0, y0, x1, y1 = obj.box or (0, 0, w, h)
            x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
            y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
            if (x1 - x0) * (y1 - y0) >= self.options.min_area * w * h:
                kept.append(replace(obj, box=(x0, y0, x1, y1)))
        return payload.with_objects(kept)


@hookimpl
def register_grounders(register: Callable[[type], None]) -> None:
    register(MinAreaGrounder)
