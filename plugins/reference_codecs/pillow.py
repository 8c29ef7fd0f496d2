"""Classical reference codecs through Pillow: AVIF (libavif/libaom), HEIC (pillow-heif/x265), WebP, JPEG.

Each codes the image downscaled by ``scale`` (the restorer upsamples). The section carries no
container the decoder can rebuild: AVIF and HEIC keep the coded size (two varints) and the
``mdat`` payload only (see :mod:`.isobmff`), WebP keeps the bare VP8 chunk. JPEG keeps its
whole file (its Huffman tables are optimised per image, so they cannot be inferred).
"""

from __future__ import annotations

import io
import warnings
from abc import abstractmethod
from typing import Any, ClassVar, Literal, TypeVar

import PIL
from PIL import Image, features
from pydantic import Field

from sedic_kit.container import Reader, put_varint
from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.roles import Options, ReferenceCodec

from . import isobmff
from .scaling import DownscaleFilter, downscale, is_scaled_size

TEMPLATE_GRAY = (128, 128, 128)
MAX_SCALE = 64.0
"""The largest ``scale`` option: a coded size must be the image size at 1/1 ... 1/64."""
LADDER_SCALES = (6.0, 5.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0)
"""Downscale factors of the rate ladder, lowest rate first."""
SEARCH_SPEED = 6
"""libaom speed of the AVIF rate-search probes."""
LADDER_QUALITIES = range(0, 31, 2)
"""Qualities tried at each scale; their rates overlap the next scale's (see :meth:`PillowCodec.rate_ladder`)."""


class PillowCodecOptions(Options):
    scale: float = Field(2.0, ge=1.0, le=MAX_SCALE, description="code at 1/scale resolution")
    quality: int = Field(0, ge=0, le=100)
    filter: DownscaleFilter = Field("lanczos", description="downscaling filter")


class AvifOptions(PillowCodecOptions):
    speed: int = Field(0, ge=0, le=10, description="libavif speed: 0 slowest/best")
    subsampling: Literal["4:2:0", "4:2:2", "4:4:4"] = "4:2:0"
    tune: Literal["default", "psnr", "ssim"] = Field("default", description="libaom tuning (default: libavif's)")
    threads: int = Field(1, ge=1, le=64, description="encoder threads: the bytes depend on this number, never on the machine's cores")


class HeicOptions(PillowCodecOptions):
    chroma: Literal["420", "422", "444"] = "420"
    preset: Literal["ultrafast", "fast", "medium", "slow", "veryslow", "placebo"] = Field("slow", description="x265 preset")


class WebpOptions(PillowCodecOptions):
    method: int = Field(6, ge=0, le=6, description="0 fastest, 6 best")


PillowOptionsT = TypeVar("PillowOptionsT", bound=PillowCodecOptions)


class PillowCodec(ReferenceCodec[PillowOptionsT]):
    """Downscale, code with a Pillow format, keep what the decoder cannot infer."""

    format: ClassVar[str]
    work_per_pixel: ClassVar[int] = 1
    """Decode cost of one coded pixel in plain pixels (measured, BENCHMARKS.md "Decode budget")."""

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": self.options.quality}

    def write(self, image: Image.Image, **kwargs: Any) -> bytes:
        """The image as a complete file of this format."""
        buf = io.BytesIO()
        image.save(buf, self.format, **{**self.save_kwargs(), **kwargs})
        return buf.getvalue()

    def read(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        """Decode a complete file of this format holding the image of ``size`` at a coded scale."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below is stricter
                with Image.open(io.BytesIO(data)) as im:
                    self.check_coded_size(im.size, size)  # from the file's header, before decoding pixels
                    im.load()
                    return im.convert("RGB")
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(f"corrupt {self.format} data ({' '.join(str(exc).split())})") from None

    def check_coded_size(self, coded: tuple[int, int], size: tuple[int, int]) -> None:
        """Refuse a coded size this codec cannot have written for an image of ``size``."""
        if not is_scaled_size(coded, size, MAX_SCALE):
            raise FormatError(
                f"corrupt {self.name} reference section (coded size {coded[0]}x{coded[1]} is not the "
                f"{size[0]}x{size[1]} image at 1/1 to 1/{MAX_SCALE:g} scale)"
            )

    def strip(self, small: Image.Image, data: bytes) -> bytes:
        """The section for a complete file ``data`` of ``small`` (default: the whole file)."""
        return data

    def unstrip(self, section: bytes, size: tuple[int, int]) -> bytes:
        """Inverse of :meth:`strip` for an image of ``size``."""
        return section

    def encode(self, image: Image.Image) -> bytes:
        small = downscale(image, self.options.scale, self.options.filter)
        return self.strip(small, self.write(small))

    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        return self.read(self.unstrip(data, (width, height)), (width, height))

    def decode_work(self, data: bytes, width: int, height: int) -> int:
        """The coded plane's pixels times :attr:`work_per_pixel` (the coded size is the image's at
        most: a larger one is refused from the bitstream's header before decoding)."""
        return self.coded_pixels(data, (width, height)) * self.work_per_pixel

    def coded_pixels(self, data: bytes, size: tuple[int, int]) -> int:
        """Pixels of the coded plane as far as the section says before decoding (default: the image's)."""
        return size[0] * size[1]

    def rate_ladder(self) -> list[dict[str, Any]]:
        """Qualities at each downscale factor, coarsest first, then full resolution up to quality 90.

        At every scale the top quality costs more than the next scale's lowest, so wherever the
        search ends it is between two neighbouring qualities of one scale (a small rate step).
        """
        rungs = [{"scale": s, "quality": q} for s in LADDER_SCALES[:-1] for q in LADDER_QUALITIES]
        return rungs + [{"scale": 1.0, "quality": q} for q in range(0, 91, 2)]


class ContainerStrippedCodec(PillowCodec[PillowOptionsT]):
    """HEIF-family formats: the section is the coded size, a 2-byte check value of the container
    boxes (:func:`.isobmff.check_value`) and the ``mdat`` payload."""

    def template_kwargs(self) -> dict[str, Any]:
        """Save options of the template: only those that shape the container boxes matter."""
        return {}

    @abstractmethod
    def library(self) -> str:
        """The versions of the libraries that write and read this format here."""

    def strip(self, small: Image.Image, data: bytes) -> bytes:
        out = bytearray()
        put_varint(out, small.width - 1)
        put_varint(out, small.height - 1)
        return bytes(out) + isobmff.check_value(data) + isobmff.payload(data)

    def coded_pixels(self, data: bytes, size: tuple[int, int]) -> int:
        coded = self.coded_size(Reader(data), size)
        return coded[0] * coded[1]

    def coded_size(self, reader: Reader, size: tuple[int, int]) -> tuple[int, int]:
        """The coded size the section starts with, checked against the image's ``size``."""
        coded = (reader.varint("coded width") + 1, reader.varint("coded height") + 1)
        self.check_coded_size(coded, size)
        return coded

    def unstrip(self, section: bytes, size: tuple[int, int]) -> bytes:
        reader = Reader(section)
        coded = self.coded_size(reader, size)  # the template below is allocated and encoded at this size
        check = reader.take(2, f"{self.name} container check value")
        template = self.write(Image.new("RGB", coded, TEMPLATE_GRAY), **self.template_kwargs())
        if isobmff.check_value(template) != check:
            raise FormatError(
                f"the {self.name} reference was coded with another build of its library: this decoder "
                f"({self.library()}) rebuilds a different container; decode with the encoder's versions"
            )
        return isobmff.rebuild(template, section[reader.pos :])


class AvifCodec(ContainerStrippedCodec[AvifOptions]):
    """AV1 still image (libavif + libaom through Pillow)."""

    name = "avif"
    version = 3
    format = "AVIF"
    work_per_pixel = 2  # a gray template encoded, then AV1 decoded
    decode_params = ("subsampling",)

    def save_kwargs(self) -> dict[str, Any]:
        o = self.options
        kwargs: dict[str, Any] = {
            "quality": o.quality, "speed": o.speed, "subsampling": o.subsampling, "codec": "aom", "max_threads": o.threads,
        }
        if o.tune != "default":
            kwargs["advanced"] = {"tune": o.tune}
        return kwargs

    def template_kwargs(self) -> dict[str, Any]:
        return {"quality": 0, "speed": 10}

    def library(self) -> str:
        return f"Pillow {PIL.__version__}, libavif {features.version('avif')}"

    def search_options(self) -> dict[str, Any]:
        """Probe at speed 6 (30-50x faster than speed 0 on Kodak, within ~20% of its rate)."""
        return {"speed": SEARCH_SPEED} if self.options.speed < SEARCH_SPEED else {}


class HeicCodec(ContainerStrippedCodec[HeicOptions]):
    """HEVC still image (libheif + x265 through pillow-heif)."""

    name = "heic"
    version = 3
    format = "HEIF"
    work_per_pixel = 12  # a gray template encoded (x265), then HEVC decoded
    requires = ("pillow_heif",)
    decode_params = ("chroma", "preset")  # both shape the hvcC box of the template

    def save_kwargs(self) -> dict[str, Any]:
        o = self.options
        return {"quality": o.quality, "chroma": int(o.chroma), "enc_params": {"preset": o.preset}}

    def template_kwargs(self) -> dict[str, Any]:
        return {"quality": 0}

    def library(self) -> str:
        import pillow_heif

        return f"pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}"

    def write(self, image: Image.Image, **kwargs: Any) -> bytes:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return super().write(image, **kwargs)

    def read(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return super().read(data, size)


class WebpCodec(PillowCodec[WebpOptions]):
    """WebP (lossy VP8): the section is the bare VP8 bitstream (the RIFF wrapper is rebuilt)."""

    name = "webp"
    version = 2
    format = "WEBP"

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": self.options.quality, "method": self.options.method}

    def strip(self, small: Image.Image, data: bytes) -> bytes:
        if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
            raise FormatError("Pillow wrote an unexpected WebP layout")
        size = int.from_bytes(data[16:20], "little")
        return data[20 : 20 + size]

    def unstrip(self, section: bytes, size: tuple[int, int]) -> bytes:
        chunk = b"VP8 " + len(section).to_bytes(4, "little") + section + b"\0" * (len(section) % 2)
        return b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk


class JpegCodec(PillowCodec[PillowCodecOptions]):
    """Baseline JPEG with optimised Huffman tables."""

    name = "jpeg"
    format = "JPEG"

    def save_kwargs(self) -> dict[str, Any]:
        return {"quality": max(1, self.options.quality), "optimize": True}


@hookimpl
def register_reference_codecs(register: Register) -> None:
    for cls in (AvifCodec, HeicCodec, WebpCodec, JpegCodec):
        register(cls)
