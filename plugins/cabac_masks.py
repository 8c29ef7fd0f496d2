"""``cabac`` mask coder: context-adaptive binary arithmetic coding of masks on the latent grid.

Masks are reduced to the ``1/scale`` grid the decoder uses (``scale=1``: full resolution) and
coded losslessly there, one after another, in raster order with constriction's range coder:

- at full resolution (``scale=1``) each row first gets a "same as the row above" flag (JBIG's
  typical prediction) so that uniform rows cost one decision (on the small grid it costs more
  than it saves);
- other pixels use a JBIG-like 10-pixel causal template of the current mask plus the co-located
  pixel and the pixel below it in the union of the masks already coded (objects rarely overlap,
  and when they do they overlap consistently); each context has adaptive counts started from a
  shipped prior measured on synthetic shapes (``cabac_prior``).

Probabilities are ratios of counts (IEEE division only), so decoding is deterministic.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import constriction
import numpy as np

from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import hookimpl
from sedic_kit.masks import grid_size

from .baseline_coders import GridMaskCoder
from .rangecoding import bytes_to_words, words_to_bytes

Bernoulli = constriction.stream.model.Bernoulli
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder

TEMPLATE = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, -2), (-2, 0), (-1, -2), (-1, 2), (-2, -1), (-2, 1))
"""Causal neighbours (row, column offsets) of the current mask; the first four are the nearest."""
OTHERS = ((0, 0), (1, 0))
"""Offsets read from the union of the previously coded masks."""
PRIOR_WEIGHT = 16.0
"""Pseudo-count given to the shipped prior of a context (less when the prior saw it less)."""
PRIOR_FILE = Path(__file__).with_name("cabac_prior.npy")
PAD = 2


class _Contexts:
    """Adaptive count tables: one for pixels (started from the shipped prior), one for row flags."""

    def __init__(self) -> None:
        prior = _prior()
        size = 1 << (len(TEMPLATE) + len(OTHERS))
        own = np.arange(size) & ((1 << len(TEMPLATE)) - 1)
        ones, seen = prior[own, 1], prior[own].sum(axis=1)
        weight = np.minimum(seen, PRIOR_WEIGHT) + 0.4
        self.ones = list(weight * (ones + 0.5) / (seen + 1.0))
        self.total = list(weight)
        self.row_ones = [0.5, 0.5]
        self.row_total = [1.0, 1.0]


@lru_cache(maxsize=1)
def _prior() -> np.ndarray:
    """Counts (zeros, ones) per template context seen on synthetic shapes (see ``cabac_prior``)."""
    return np.load(PRIOR_FILE).astype(np.float64)


def _code(io, count: int, rows: int, cols: int, grids: np.ndarray | None, typical_rows: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Shared encoder/decoder walk; ``io(p_one, bit or None)`` returns the bit."""
    ctx = _Contexts()
    padded = np.zeros((count, rows + 2 * PAD, cols + 2 * PAD), dtype=np.uint8)
    union = np.zeros((rows + 2 * PAD, cols + 2 * PAD), dtype=np.uint8)
    offsets = [(dr, dc, 1 << i) for i, (dr, dc) in enumerate(TEMPLATE)]
    other = [(dr, dc, 1 << (len(TEMPLATE) + i)) for i, (dr, dc) in enumerate(OTHERS)]
    for k in range(count):
        cur = padded[k].tolist()
        uni = union.tolist()
        prev_flag = 0
        for r in range(PAD, rows + PAD):
            known = None if grids is None else grids[k, r - PAD]
            same = 0
            if typical_rows:
                same = None if known is None else int(np.array_equal(known, cur[r - 1][PAD : cols + PAD]))
                same = io(ctx.row_ones[prev_flag] / ctx.row_total[prev_flag], same)
                ctx.row_ones[prev_flag] += same
                ctx.row_total[prev_flag] += 1.0
                prev_flag = same
            row = cur[r]
            if same:
                row[PAD : cols + PAD] = cur[r - 1][PAD : cols + PAD]
                continue
            for c in range(PAD, cols + PAD):
                i = 0
                for dr, dc, bit in offsets:
                    if cur[r + dr][c + dc]:
                        i |= bit
                for dr, dc, bit in other:
                    if uni[r + dr][c + dc]:
                        i |= bit
                value = None if known is None else int(known[c - PAD])
                value = io(ctx.ones[i] / ctx.total[i], value)
                ctx.ones[i] += value
                ctx.total[i] += 1.0
                row[c] = value
        padded[k] = cur
        union |= padded[k]
    return padded[:, PAD : rows + PAD, PAD : cols + PAD].astype(bool)


class CabacMaskCoder(GridMaskCoder):
    """Context-adaptive binary arithmetic coding on the 1/scale grid (JBIG-style contexts)."""

    name = "cabac"

    def encode(self, masks: list[np.ndarray], width: int, height: int) -> bytes:
        rows, cols = grid_size(width, height, self.options.scale)
        if not masks:
            return b""
        grids = self.stack(masks, width, height).reshape(len(masks), rows, cols)
        bits: list[int] = []
        probs: list[float] = []

        def put(p: float, bit: int | None) -> int:
            bits.append(bit)  # type: ignore[arg-type]
            probs.append(p)
            return bit  # type: ignore[return-value]

        _code(put, len(masks), rows, cols, grids, self.options.scale == 1)
        encoder = RangeEncoder()
        encoder.encode(np.array(bits, dtype=np.int32), Bernoulli(perfect=False), np.array(probs, dtype=np.float64))
        expected = [g for g in grids]
        return words_to_bytes(encoder.get_compressed(), lambda d: self._decodes_to(d, expected, width, height))

    def _decodes_to(self, data: bytes, expected: list[np.ndarray], width: int, height: int) -> bool:
        try:
            out = self.decode(data, len(expected), width, height)
        except FormatError:
            return False
        return all(np.array_equal(a, b) for a, b in zip(out, expected))

    def decode(self, data: bytes, count: int, width: int, height: int) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        if count == 0:
            if data:
                raise FormatError("mask section is not empty but there are no objects")
            return []
        decoder = RangeDecoder(bytes_to_words(data))

        def get(p: float, bit: int | None) -> int:
            try:
                return int(decoder.decode(Bernoulli(p, perfect=False)))
            except (AssertionError, ValueError) as exc:
                raise FormatError(f"corrupt mask section ({exc})") from None

        return list(_code(get, count, rows, cols, None, self.options.scale == 1))


@hookimpl
def register_entropy_coders(register):  # type: ignore[no-untyped-def]
    register(CabacMaskCoder)
