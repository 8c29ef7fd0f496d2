"""Baseline entropy coders: raw UTF-8, zlib and brotli for text; PNG and raw bits for masks."""

from __future__ import annotations

import io
import warnings
import zlib

import brotli
import numpy as np
from PIL import Image
from pydantic import Field

from sedic_kit.container import Reader, put_bytes, put_varint
from sedic_kit.describe import max_text_bytes
from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.masks import grid_size, to_grid
from sedic_kit.roles import MaskCoder, Options, TextCoder


def join_texts(texts: list[str]) -> bytes:
    """Count, then each string's UTF-8 bytes with a varint length."""
    out = bytearray()
    put_varint(out, len(texts))
    for t in texts:
        put_bytes(out, t.encode("utf-8"))
    return bytes(out)


def split_texts(data: bytes) -> list[str]:
    r = Reader(data)
    count = r.varint("text count")
    if count > len(data):
        raise FormatError("corrupt text section (string count)")
    texts = [r.blob("text").decode("utf-8") for _ in range(count)]
    if r.pos != len(data):
        raise FormatError("corrupt text section (trailing bytes)")
    return texts


def check_inflated(size: int, limit: int, complete: bool) -> None:
    """After decompressing at most ``limit + 1`` bytes: refuse a bomb, a cut or an overlong stream."""
    if size > limit:
        raise FormatError(f"corrupt text section (inflates past {limit} bytes, the most a file's texts can hold)")
    if not complete:
        raise FormatError("corrupt text section (truncated or trailing compressed data)")


class Utf8TextCoder(TextCoder):
    """Uncompressed UTF-8 with varint lengths (a reference point, not a real coder)."""

    name = "utf8"

    def encode(self, texts: list[str]) -> bytes:
        return join_texts(texts)

    def decode(self, data: bytes) -> list[str]:
        return split_texts(data)


class ZlibTextCoder(TextCoder):
    """zlib (deflate, level 9, raw stream)."""

    name = "zlib"

    def encode(self, texts: list[str]) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(join_texts(texts)) + c.flush()

    def decode(self, data: bytes) -> list[str]:
        limit = max_text_bytes()
        d = zlib.decompressobj(-15)
        try:
            out = d.decompress(data, limit + 1)  # stops there: a bomb never inflates further
        except zlib.error as exc:
            raise FormatError(f"corrupt text section ({exc})") from None
        check_inflated(len(out), limit, d.eof and not d.unused_data)
        return split_texts(out)


class BrotliOptions(Options):
    quality: int = Field(11, ge=0, le=11)


class BrotliTextCoder(TextCoder[BrotliOptions]):
    """Brotli in text mode (its built-in dictionary helps English)."""

    name = "brotli"

    def encode(self, texts: list[str]) -> bytes:
        return brotli.compress(join_texts(texts), mode=brotli.MODE_TEXT, quality=self.options.quality)

    def decode(self, data: bytes) -> list[str]:
        limit = max_text_bytes()
        d = brotli.Decompressor()
        try:
            out = d.process(data, output_buffer_limit=limit + 1)  # stops there: a bomb never inflates further
        except brotli.error as exc:
            raise FormatError(f"corrupt text section ({exc})") from None
        check_inflated(len(out), limit, d.is_finished())
        return split_texts(out)


class GridOptions(Options):
    scale: int = Field(8, ge=1, le=64, description="code masks at 1/scale resolution (8 = SD latent grid)")


class GridMaskCoder(MaskCoder[GridOptions]):
    """Masks reduced to a ``1/scale`` grid, stacked vertically, then coded."""

    decode_params = ("scale",)

    def stack(self, masks: list[np.ndarray], width: int, height: int) -> np.ndarray:
        rows, cols = grid_size(width, height, self.options.scale)
        if not masks:
            return np.zeros((0, cols), dtype=bool)
        return np.concatenate([to_grid(m, width, height, self.options.scale) for m in masks], axis=0)

    @staticmethod
    def no_objects(data: bytes, count: int) -> bool:
        """True when there is nothing to decode; the section must then be empty."""
        if count:
            return False
        if data:
            raise FormatError("mask section is not empty but there are no objects")
        return True

    def unstack(self, grid: np.ndarray, count: int, width: int, height: int) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        if grid.shape != (rows * count, cols):
            raise FormatError(f"mask section has shape {grid.shape}, expected {(rows * count, cols)}")
        return [grid[i * rows : (i + 1) * rows].copy() for i in range(count)]


class RawMaskCoder(GridMaskCoder):
    """One bit per grid cell (numpy packbits)."""

    name = "raw"

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        return np.packbits(self.stack(masks, width, height)).tobytes()

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        n = rows * cols * count
        if len(data) != (n + 7) // 8:
            raise FormatError(f"mask section is {len(data)} bytes, expected {(n + 7) // 8}")
        bits = np.unpackbits(np.frombuffer(data, np.uint8))[:n].astype(bool)
        return self.unstack(bits.reshape(rows * count, cols), count, width, height)


class PngMaskCoder(GridMaskCoder):
    """The stacked grid as a 1-bit PNG (zlib inside)."""

    name = "png"

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        grid = self.stack(masks, width, height)
        if grid.size == 0:
            return b""
        buf = io.BytesIO()
        Image.fromarray(grid).save(buf, "PNG", optimize=True)
        return buf.getvalue()

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        if self.no_objects(data, count):
            return []
        rows, cols = grid_size(width, height, self.options.scale)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below is stricter
                with Image.open(io.BytesIO(data)) as im:
                    if im.size != (cols, rows * count):  # from the PNG header, before inflating anything
                        raise FormatError(f"mask section is a {im.size[0]}x{im.size[1]} PNG, expected {cols}x{rows * count}")
                    grid = np.asarray(im.convert("1"), dtype=bool)
        except (OSError, ValueError) as exc:  # not a PNG, or a damaged one
            raise FormatError(f"corrupt mask section (PNG: {exc})") from None
        return self.unstack(grid, count, width, height)


@hookimpl
def register_entropy_coders(register: Register) -> None:
    for cls in (Utf8TextCoder, ZlibTextCoder, BrotliTextCoder, RawMaskCoder, PngMaskCoder):
        register(cls)
