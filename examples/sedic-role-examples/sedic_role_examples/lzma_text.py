"""Text coder ``lzma``: caption, names and details as NUL-separated UTF-8, xz-compressed.

Decompression is bounded: a crafted section cannot expand past what a payload can hold.
"""

from __future__ import annotations

import lzma
from collections.abc import Callable

from sedic_kit import FormatError, TextCoder, hookimpl

MAX_TEXT_BYTES = 64 * 1024
"""More than caption + 3 objects can hold under the word limits."""


class LzmaText(TextCoder):
    """Raw LZMA2 stream (no container header: every byte counts)."""

    name = "lzma"
    version = 1
    FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9}]

    def encode(self, texts: list[str]) -> bytes:
        return lzma.compress("\x00".join(texts).encode("utf-8"), format=lzma.FORMAT_RAW, filters=self.FILTERS)

    def decode(self, data: bytes) -> list[str]:
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=self.FILTERS)
        try:
            raw = decompressor.decompress(data, max_length=MAX_TEXT_BYTES + 1)
            text = raw.decode("utf-8")
        except (lzma.LZMAError, UnicodeDecodeError) as exc:
            raise FormatError(f"text 'lzma': {exc}") from None
        if len(raw) > MAX_TEXT_BYTES:
            raise FormatError(f"text 'lzma': more than {MAX_TEXT_BYTES} bytes of text")
        return text.split("\x00")


@hookimpl
def register_entropy_coders(register: Callable[[type], None]) -> None:
    register(LzmaText)
