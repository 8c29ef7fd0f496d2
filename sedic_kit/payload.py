"""The semantic payload: one data model shared by encoder stages, the bitstream and the decoder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]
"""Object box ``(x0, y0, x1, y1)`` in pixels of the full-size image (x1, y1 exclusive)."""


@dataclass
class SemanticObject:
    """One significant object (paper: Textn_j, Textd_j, M_j).

    ``name`` and ``details`` are transmitted; ``box`` and ``score`` are encoder-side only;
    ``mask`` is a boolean array at any resolution (full size at the encoder, the mask coder's
    resolution after decoding) and is resized by whoever consumes it.
    """

    name: str
    details: str = ""
    box: Box | None = None
    score: float | None = None
    mask: np.ndarray | None = None

    @property
    def prompt(self) -> str:
        """Text used to condition restoration of this object."""
        if self.details and self.name and self.name.lower() not in self.details.lower():
            return f"{self.name}, {self.details}"
        return self.details or self.name


@dataclass
class Payload:
    """Everything the encoder extracts from one image and the decoder needs to restore it.

    ``extras`` holds plugin-defined sections (tag -> bytes); they are written to the ``.sedic``
    file and counted like every other section.
    """

    width: int
    height: int
    caption: str = ""
    objects: list[SemanticObject] = field(default_factory=list)
    reference: bytes = b""
    extras: dict[str, bytes] = field(default_factory=dict)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def with_objects(self, objects: list[SemanticObject]) -> Payload:
        """A copy with ``objects`` replaced."""
        return replace(self, objects=list(objects))

    def texts(self) -> list[str]:
        """All transmitted strings in wire order: caption, then name and details per object."""
        out = [self.caption]
        for obj in self.objects:
            out += [obj.name, obj.details]
        return out

    @staticmethod
    def split_texts(texts: list[str]) -> tuple[str, list[SemanticObject]]:
        """Inverse of :meth:`texts`: caption and objects (without boxes or masks)."""
        if len(texts) % 2 != 1:
            raise ValueError(f"expected caption plus name/details pairs, got {len(texts)} strings")
        caption, rest = texts[0], texts[1:]
        objects = [SemanticObject(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
        return caption, objects


@dataclass
class SourceImage:
    """An input image after normalisation to 8-bit RGB, with where it came from.

    What encoder-side plugins (describer, grounder, segmenter) get; they read it and never change it.
    """

    image: Image.Image
    """The pixels to describe: RGB, 8 bits, EXIF orientation applied (the size the file codes)."""
    path: Path | None = None
    """The file it was read from; None for a PIL image, encoded bytes or a numpy array."""
    text_metadata: dict[str, str] = field(default_factory=dict)
    """The file's text chunks as Pillow reads them (PNG ``tEXt``/``iTXt``, e.g. ``Description``)."""
    notes: list[str] = field(default_factory=list)
    """The conversions made while loading (``alpha composited over white``); shown as warnings."""

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of ``image``: the size of every payload made from it."""
        return self.image.size
