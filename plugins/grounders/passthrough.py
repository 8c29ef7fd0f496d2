"""The ``passthrough`` grounder: trusts the describer's objects and clips their boxes."""

from __future__ import annotations

from dataclasses import replace

from sedic_kit.payload import Payload, SourceImage
from sedic_kit.roles import Grounder

from ..shared.boxes import clamp_box


class PassthroughGrounder(Grounder):
    """Trusts the describer: keeps every object, clips its box (whole frame when missing)."""

    name = "passthrough"

    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        return payload.with_objects([replace(o, box=clamp_box(o.box, w, h)) for o in payload.objects])

