"""Reference codec ``png``: the image at 1/``scale`` resolution as a lossless PNG.

A decoder-side plugin: ``version`` is bumped whenever the bitstream or the decoded image
changes, and ``scale`` is a ``decode_param``, so a non-default value goes into the file header.
The decoder returns the small image; the restorer brings it to full size.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image
from pydantic import Field

from sedic_kit import FormatError, Options, ReferenceCodec, hookimpl


class PngOptions(Options):
    scale: int = Field(8, ge=1, le=64, description="code the image at 1/scale resolution")


class PngReference(ReferenceCodec[PngOptions]):
    """Downscaled lossless PNG."""

    name = "png"
    version = 1
    decode_params = ("scale",)

    def coded_size(self, width: int, height: int) -> tuple[int, int]:
        return max(1, round(width / self.options.scale)), max(1, round(height / self.options.scale))

    def encode(self, image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.resize(self.coded_size(*image.size), Image.Resampling.BOX).save(buf, "PNG", optimize=True)
        return buf.getvalue()

    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        expected = self.coded_size(width, height)
        try:
            image = Image.open(io.BytesIO(data))
            if image.size != expected:  # checked before decoding the pixels: no bomb
                raise FormatError(f"reference 'png': coded size {image.size}, expected {expected}")
            return image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as exc:
            raise FormatError(f"reference 'png': {exc}") from None

    def rate_ladder(self) -> list[dict[str, Any]]:
        """Settings from lowest to highest rate, for ``--target-bpp``."""
        return [{"scale": s} for s in (32, 16, 8, 4)]


@hookimpl
def register_reference_codecs(register: Callable[[type], None]) -> None:
    register(PngReference)
