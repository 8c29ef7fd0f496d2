"""Text coder ``lzma``: caption, names and details as a JSON list (any string, NUL included), xz-compressed.

Decompression is bounded: a crafted section cannot expand past what a payload can hold.
"""

from __future__ import annotations

import json
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
        data = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=self.FILTERS)

    def decode(self, data: bytes) -> list[str]:
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=self.FILTERS)
        try:
            raw = decompressor.decompress(data, max_length=MAX_TEXT_BYTES + 1)
            if len(raw) > MAX_TEXT_BYTES:
                raise FormatError(f"text 'lzma': more than {MAX_TEXT_BYTES} bytes of text")
            texts = json.loads(raw.decode("utf-8"))
        except (lzma.LZMAError, ValueError) as exc:  # ValueError: bad UTF-8 or JSON
            raise FormatError(f"text 'lzma': {exc}") from None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise FormatError("text 'lzma': not a list of strings")
        return texts


@hookimpl
def register_entropy_coders(register: Callable[[type], None]) -> None:
    register(LzmaText)
