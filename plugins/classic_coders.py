"""Classic baselines: byte Huffman for text (the paper's), run-length + Golomb-Rice for masks.

Both write everything their decoder needs: the Huffman code lengths go into the section, the
Golomb parameter too.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np
from PIL import Image

from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.masks import grid_size

from sedic_kit.roles import TextCoder

from .baseline_coders import GridMaskCoder, join_texts, split_texts

MAX_CODE_LENGTH = 32


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, width: int) -> None:
        self.bits += [(value >> (width - 1 - i)) & 1 for i in range(width)]

    def unary(self, value: int) -> None:
        self.bits += [1] * value + [0]

    def getvalue(self) -> bytes:
        return np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes()


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, np.uint8)).tolist()
        self.pos = 0

    def get(self, width: int) -> int:
        if self.pos + width > len(self.bits):
            raise FormatError("truncated section")
        value = 0
        for b in self.bits[self.pos : self.pos + width]:
            value = value << 1 | b
        self.pos += width
        return value

    def unary(self) -> int:
        start = self.pos
        while self.pos < len(self.bits) and self.bits[self.pos]:
            self.pos += 1
        if self.pos >= len(self.bits):
            raise FormatError("truncated section")
        self.pos += 1
        return self.pos - start - 1


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


class GolombMaskCoder(GridMaskCoder):
    """Raster runs of the stacked grid (alternating, starting with 0s), Golomb-Rice coded."""

    name = "golomb"

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        if not masks:
            return b""
        flat = self.stack(masks, width, height).ravel()
        edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
        runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
        if flat[0]:
            runs = np.concatenate([[0], runs])
        k = max(0, int(np.log2(max(1.0, float(runs.mean())))))
        w = BitWriter()
        w.put(k, 5)
        w.put(len(runs) - 1, 32)
        for run in runs[:-1].tolist():  # the last run is implied by the grid size
            w.unary(run >> k)
            w.put(run & ((1 << k) - 1), k)
        return w.getvalue()

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        if self.no_objects(data, count):
            return []
        total = rows * cols * count
        r = BitReader(data)
        k = r.get(5)
        n = r.get(32)
        if n > min(total, len(r.bits)):  # every run costs at least one bit
            raise FormatError("corrupt mask section (run count)")
        flat = np.zeros(total, dtype=bool)
        pos, value = 0, False
        for _ in range(n):
            run = (r.unary() << k) | r.get(k)
            if pos + run > total:
                raise FormatError("corrupt mask section (run past the end)")
            flat[pos : pos + run] = value
            pos, value = pos + run, not value
        flat[pos:] = value
        return self.unstack(flat.reshape(rows * count, cols), count, width, height)


@hookimpl
def register_entropy_coders(register: Register) -> None:
    for cls in (HuffmanTextCoder, GolombMaskCoder):
        register(cls)
