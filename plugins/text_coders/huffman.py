"""The ``huffman`` text coder: byte Huffman, the paper's text coder; the code lengths go into the section."""

from __future__ import annotations

import heapq
from collections import Counter

from sedic_kit.errors import FormatError
from sedic_kit.roles import TextCoder

from ..shared.bits import BitReader, BitWriter
from .baseline import join_texts, split_texts

MAX_CODE_LENGTH = 32


def code_lengths(freq: Counter[int]) -> dict[int, int]:
    """Huffman code lengths (a single symbol gets length 1)."""
    if len(freq) == 1:
        return {next(iter(freq)): 1}
    heap: list[tuple[int, int, tuple[int, ...]]] = [(n, i, (s,)) for i, (s, n) in enumerate(sorted(freq.items()))]
    heapq.heapify(heap)
    lengths = dict.fromkeys(freq, 0)
    tie = len(heap)
    while len(heap) > 1:
        n1, _, a = heapq.heappop(heap)
        n2, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (n1 + n2, tie, a + b))
        tie += 1
    return lengths


def canonical(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Canonical codes: symbol -> (code, length)."""
    code, prev, out = 0, 0, {}
    for s, n in sorted(lengths.items(), key=lambda x: (x[1], x[0])):
        code <<= n - prev
        out[s] = (code, n)
        code, prev = code + 1, n
    return out


class HuffmanTextCoder(TextCoder):
    """Byte-level Huffman of the UTF-8 strings; the table (length per byte value) is sent."""

    name = "huffman"

    def encode(self, texts: list[str]) -> bytes:
        data = join_texts(texts)
        lengths = code_lengths(Counter(data))
        w = BitWriter()
        w.put(len(data), 32)
        for s in range(256):  # 5-bit length per byte value, 0 = unused
            w.put(lengths.get(s, 0), 5)
        codes = canonical(lengths)
        for b in data:
            w.put(*codes[b])
        return w.getvalue()

    def decode(self, data: bytes) -> list[str]:
        r = BitReader(data)
        size = r.get(32)
        if size > 8 * len(data):
            raise FormatError("corrupt text section (length)")
        lengths = {s: n for s in range(256) if (n := r.get(5))}
        lookup = {(n, c): s for s, (c, n) in canonical(lengths).items()}
        out = bytearray()
        for _ in range(size):
            code = n = 0
            while (n, code) not in lookup:
                if n >= MAX_CODE_LENGTH:
                    raise FormatError("corrupt text section (bad Huffman code)")
                code, n = code << 1 | r.get(1), n + 1
            out.append(lookup[n, code])
        try:
            return split_texts(bytes(out))
        except UnicodeDecodeError:
            raise FormatError("corrupt text section (not UTF-8)") from None

