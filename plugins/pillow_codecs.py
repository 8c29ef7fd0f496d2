"""Classical reference codecs through Pillow: AVIF, HEIC (pillow-heif), WebP and JPEG.

Each codes the image downscaled by ``scale`` (the restorer upsamples); the section holds the
codec's own file bytes.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar, Literal

from PIL import Image
from pydantic import Field

from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import hookimpl
from sedic_kit.roles import Options, ReferenceCodec


class PillowCodecOptions(Options):
    scale: float = Field(2.0, ge=1.0, le=64.0, description="code at 1/scale resolution")
    quality: int = Field(0, ge=0, le=100)


class AvifOptions(PillowCodecOptions):
    speed: int = Field(0, ge=0, le=10, description="libavif speed: 0 slowest/best")
    subsampling: Literal["4:2:0", "4:2:2", "4:4:4"] = "4:2:0"


class WebpOptions(PillowCodecOptions):
    method: int = Field(6, ge=0, le=6)


class PillowCodec(ReferenceCodec):
    """Downscale with Lanczos, code with a Pillow format."""

    format: ClassVar[str]
    Options = PillowCodecOptions

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": self.options.quality}

    def encode(self, image: Image.Image) -> bytes:
        w, h = image.size
        s = self.options.scale
        size = (max(1, round(w / s)), max(1, round(h / s)))
        small = image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, self.format, **self.save_kwargs())
        return buf.getvalue()

    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return im.convert("RGB")
        except Exception as exc:
            raise FormatError(f"cannot decode the {self.name} reference section ({exc})") from None


class AvifCodec(PillowCodec):
    """AV1 still image (libavif through Pillow)."""

    name = "avif"
    format = "AVIF"
    Options = AvifOptions

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": self.options.quality, "speed": self.options.speed, "subsampling": self.options.subsampling}


class HeicCodec(PillowCodec):
    """HEVC still image (libheif through pillow-heif)."""

    name = "heic"
    format = "HEIF"
    requires = ("pillow_heif",)

    def encode(self, image: Image.Image) -> bytes:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return super().encode(image)

    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return super().decode(data, width, height)


class WebpCodec(PillowCodec):
    """WebP (lossy VP8)."""

    name = "webp"
    format = "WEBP"
    Options = WebpOptions

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": self.options.quality, "method": self.options.method}


class JpegCodec(PillowCodec):
    """Baseline JPEG."""

    name = "jpeg"
    format = "JPEG"

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": max(1, self.options.quality), "optimize": True}


@hookimpl
def register_reference_codecs(register):  # type: ignore[no-untyped-def]
    for cls in (AvifCodec, HeicCodec, WebpCodec, JpegCodec):
        register(cls)
