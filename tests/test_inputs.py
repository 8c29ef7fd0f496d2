"""Input images: odd modes are converted correctly, bad files get one clear error."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_image
from sedic_kit import Codec, InputError
from sedic_kit.imaging import load_image


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = (np.arange(64 * 32, dtype=np.uint32).reshape(32, 64) * 32).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    src = load_image(path)
    got = np.asarray(src.image)[..., 0]
    assert got.max() > 200 and got.min() == 0  # full range kept, not saturated at 255
    assert np.abs(got.astype(int) - np.round(ramp / 257).astype(int)).max() <= 1


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    src = load_image(rgba)
    arr = np.asarray(src.image)
    assert tuple(arr[0, 0]) == (0, 0, 255) and tuple(arr[4, 4]) == (255, 255, 255)
    assert "alpha composited over white" in src.notes


def test_cmyk_jpeg_and_grayscale(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    synthetic_image().convert("CMYK").save(cmyk, quality=95)
    src = load_image(cmyk)
    assert src.image.mode == "RGB"
    assert np.abs(np.asarray(src.image, float) - np.asarray(synthetic_image(), float)).mean() < 12
    gray = load_image(synthetic_image().convert("L"))
    assert gray.image.mode == "RGB" and "grayscale coded as RGB" in gray.notes


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = synthetic_image(96, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    src = load_image(path)
    assert src.size == (64, 96) and "applied EXIF orientation" in src.notes
    assert "applied EXIF orientation" not in load_image(synthetic_image()).notes
    result = Codec.from_profile("lite").encode(path)
    assert (result.payload.width, result.payload.height) == (64, 96)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"hello, not an image", "not an image"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "not an image|cannot decode")],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_image(path)


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    synthetic_image().save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot decode"):
        load_image(path)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (no pixels are ever decoded)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(12_000, 9_000), (20_000, 20_000)])
def test_huge_images_are_refused_before_decoding(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(*size))
    with pytest.raises(InputError, match="megapixels"):
        load_image(path)


def test_pixel_limit_is_configurable(small_image: Path) -> None:
    with pytest.raises(InputError, match="above the limit"):
        Codec.from_profile("lite", max_pixels=1000).encode(small_image)
