"""Baseline text coders: raw UTF-8, zlib and brotli."""

from __future__ import annotations

import zlib

import brotli
from pydantic import Field

from sedic_kit.container import Reader, put_bytes, put_varint
from sedic_kit.describe import max_text_bytes
from sedic_kit.errors import FormatError
from sedic_kit.roles import Options, TextCoder


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


TEXT_CODERS = (Utf8TextCoder, ZlibTextCoder, BrotliTextCoder)
