"""Byte framing of constriction range-coder output, shared by the model-based coders.

constriction emits 32-bit words; the decoder reads missing words as zeros. Words are stored
big-endian and trailing bytes are dropped while the message still decodes identically (the
code value only moves down inside its final interval as low bytes become zero, so the first
failure ends the search).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_TRIM = 4
"""Trailing bytes the encoder tries to drop."""


def words_to_bytes(words: np.ndarray, decodes_ok: Callable[[bytes], bool]) -> bytes:
    """Serialise range-coder words, then drop trailing bytes the decoder can do without."""
    data = np.asarray(words, dtype=np.uint32).astype(">u4").tobytes().rstrip(b"\0")
    for _ in range(MAX_TRIM):
        if not data or not decodes_ok(data[:-1].rstrip(b"\0")):
            break
        data = data[:-1].rstrip(b"\0")
    return data


def bytes_to_words(data: bytes) -> np.ndarray:
    """Inverse of :func:`words_to_bytes` (zero padding to whole words)."""
    padded = bytes(data) + b"\0" * (-len(data) % 4)
    return np.frombuffer(padded, dtype=">u4").astype(np.uint32)
