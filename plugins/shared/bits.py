"""Bit-level writer and reader (MSB first) for the classic Huffman and Golomb-Rice coders."""

from __future__ import annotations

import numpy as np

from sedic_kit.errors import FormatError


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
