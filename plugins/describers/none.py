"""The ``none`` describer: no caption and no objects (the decoder restores from the reference alone)."""

from __future__ import annotations

from sedic_kit.describe import DescriptionOptions
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.roles import Describer


class NoDescriber(Describer[DescriptionOptions]):
    """No caption, no objects: the decoder restores from the reference image alone."""

    name = "none"

    def describe(self, source: SourceImage) -> Payload:
        return Payload(*source.size)

