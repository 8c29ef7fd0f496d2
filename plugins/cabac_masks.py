"""``cabac`` mask coder: context-adaptive binary arithmetic coding of masks on the latent grid.

Masks are reduced to the ``1/scale`` grid the decoder uses (``scale=1``: full resolution) and
coded losslessly there, one after another, in raster order with constriction's range coder:

- at full resolution (``scale=1``) each row first gets a "same as the row above" flag (JBIG's
  typical prediction) so that uniform rows cost one decision (on the small grid it costs more
  than it saves);
- every other pixel is predicted from a 16-pixel causal template of the current mask (JBIG-like,
  nearest pixels first) plus the co-located pixel and the pixel below it in the union of the
  masks already coded (objects rarely overlap, and when they do they overlap consistently);
- predictions: a static prior per 16-pixel context, measured on synthetic shapes and shipped
  (``cabac_prior``), and adaptive counts on 4-, 10- and 16-pixel contexts (each with the two
  other-mask pixels) smoothed towards that prior, combined by a logistic mixer whose weights
  (one set per number of set nearest neighbours and reference edge presence) learn online;
- given the decoded reference image (which the decoder has before the masks), one more adaptive
  model adds what the reference says about the cell, block-averaged onto the grid: whether its
  colour changes to the left / top neighbour (GrabCut masks follow colour edges), and whether
  it is closer to the mean colour of this mask's cells coded so far as set or as unset.

The mixer and the reference features run in integer arithmetic and the counts use IEEE division
only, so encoder and decoder compute bit-identical probabilities on any platform.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import constriction
import numpy as np
from PIL import Image

from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.masks import grid_size

from .baseline_coders import GridMaskCoder
from .rangecoding import bytes_to_words, words_to_bytes

Bernoulli = constriction.stream.model.Bernoulli
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder

TEMPLATE = (
    (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, -2), (-2, 0), (-1, -2), (-1, 2), (-2, -1), (-2, 1),
    (0, -3), (-2, -2), (-2, 2), (-1, -3), (-1, 3), (-3, 0),
)
"""Causal neighbours (row, column offsets) of the current mask, nearest first."""
PRIOR_BITS = 16
"""The shipped prior is indexed by the first ``PRIOR_BITS`` template pixels."""
OTHERS = ((0, 0), (1, 0))
"""Offsets read from the union of the previously coded masks."""
LEVELS = ((0xF, 2, 0.5), (0x3FF, 2, 32.0), (0xFFFF, 2, 8.0))
"""Adaptive count models: (template pixel bit mask, other-mask pixels, pseudo-count of the prior)."""
EDGE_STEPS = (20, 60)
"""Thresholds on the summed absolute RGB difference between neighbouring reference cells."""
REFERENCE_WEIGHT = 0.25
"""Pseudo-count of the prior in the reference-conditioned model."""
PRIOR_FILE = Path(__file__).with_name("cabac_prior.npz")
PAD = 3


@lru_cache(maxsize=1)
def _prior() -> list[float]:
    """P(pixel set) per context of the first ``PRIOR_BITS`` template pixels, from synthetic shapes."""
    with np.load(PRIOR_FILE, allow_pickle=False) as z:
        counts = z["counts"].astype(np.float64)
    return list((counts[:, 1] + 0.5) / (counts.sum(axis=1) + 1.0))


def _level_masks() -> list[tuple[int, float]]:
    """Bit masks selecting each level's context out of the full context index."""
    out = []
    for template_bits, n_others, weight in LEVELS:
        others = ((1 << n_others) - 1) << len(TEMPLATE)
        out.append((template_bits | others, weight))
    return out


SQUASH_KNOTS = (
    1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048,
    2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095,
)
"""4096 / (1 + e^-x) at x = -8, -7.5, ..., 8 (x in 1/256 units: -2048 ... 2048 step 128)."""
LEARNING_RATE = 10
"""Mixer weight update shift (higher: slower)."""


def squash(x: int) -> int:
    """Logistic function in fixed point: x in 1/256 units -> probability in 1/4096 units."""
    if x >= 2047:
        return 4095
    if x <= -2047:
        return 1
    i, w = (x + 2048) >> 7, (x + 2048) & 127
    return (SQUASH_KNOTS[i] * (128 - w) + SQUASH_KNOTS[i + 1] * w + 64) >> 7


@lru_cache(maxsize=1)
def _stretch_table() -> list[int]:
    """Inverse of :func:`squash` over 0..4095 (integer arithmetic only)."""
    table, x = [], -2047
    for p in range(4096):
        while x < 2047 and squash(x) < p:
            x += 1
        table.append(x)
    return table


def block_means(image: Image.Image, rows: int, cols: int) -> np.ndarray:
    """Integer mean RGB of each cell of a ``rows`` x ``cols`` grid laid over ``image``."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int64)
    h, w = pixels.shape[:2]
    if h < rows or w < cols:
        pixels = pixels.repeat(-(-rows // h), axis=0).repeat(-(-cols // w), axis=1)
        h, w = pixels.shape[:2]
    ys, xs = np.arange(rows) * h // rows, np.arange(cols) * w // cols
    sums = np.add.reduceat(np.add.reduceat(pixels, ys, axis=0), xs, axis=1)
    areas = np.diff(np.append(ys, h))[:, None] * np.diff(np.append(xs, w))[None, :]
    return sums // areas[:, :, None]


def _reference_cells(reference: Image.Image | None, rows: int, cols: int) -> tuple[list[list[int]], list[list[list[int]]]] | None:
    """Padded per-cell edge codes (left step + 3 * top step) and mean colours of the reference."""
    if reference is None:
        return None
    g = block_means(reference, rows, cols)
    left = np.zeros((rows, cols), dtype=np.int64)
    top = np.zeros((rows, cols), dtype=np.int64)
    left[:, 1:] = np.abs(g[:, 1:] - g[:, :-1]).sum(axis=2)
    top[1:] = np.abs(g[1:] - g[:-1]).sum(axis=2)
    codes = np.pad(np.digitize(left, EDGE_STEPS) + 3 * np.digitize(top, EDGE_STEPS), PAD)
    colours = np.pad(g, ((PAD, PAD), (PAD, PAD), (0, 0)))
    return codes.tolist(), colours.tolist()


def _colour_side(colour: list[int], sums: list[list[int]]) -> int:
    """0: no cell of one kind yet; 1: ``colour`` nearer the set cells' mean; 2: nearer the unset ones'."""
    unset, ones = sums
    if not (unset[3] and ones[3]):
        return 0
    d_one = sum(abs(colour[j] * ones[3] - ones[j]) for j in range(3)) * unset[3]
    d_unset = sum(abs(colour[j] * unset[3] - unset[j]) for j in range(3)) * ones[3]
    return 1 + (2 * d_one) // (d_one + d_unset + 1)


def _code(io, count: int, rows: int, cols: int, grids: np.ndarray | None, typical_rows: bool = True, reference: Image.Image | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Shared encoder/decoder walk; ``io(p_one, bit or None)`` returns the bit."""
    cells = _reference_cells(reference, rows, cols)
    ref_ones: dict[int, float] = {}
    ref_total: dict[int, float] = {}
    prior = _prior()
    stretch = _stretch_table()
    prior_mask = (1 << PRIOR_BITS) - 1
    levels: list[tuple[int, float, dict[int, float], dict[int, float]]] = [(mask, weight, {}, {}) for mask, weight in _level_masks()]
    n_models = len(levels) + (cells is not None)
    n_inputs = n_models + 2
    weights = [[0, 0, *([(1 << 16) // n_models] * n_models)] for _ in range(10)]
    row_ones, row_total = [0.5, 0.5], [1.0, 1.0]
    padded = np.zeros((count, rows + 2 * PAD, cols + 2 * PAD), dtype=np.uint8)
    union = np.zeros((rows + 2 * PAD, cols + 2 * PAD), dtype=np.uint8)
    offsets = [(dr, dc, 1 << i) for i, (dr, dc) in enumerate(TEMPLATE)]
    other = [(dr, dc, 1 << (len(TEMPLATE) + i)) for i, (dr, dc) in enumerate(OTHERS)]
    for k in range(count):
        cur = padded[k].tolist()
        uni = union.tolist()
        prev_flag = 0
        colour_sums = [[0, 0, 0, 0], [0, 0, 0, 0]]
        for r in range(PAD, rows + PAD):
            known = None if grids is None else grids[k, r - PAD]
            same = 0
            if typical_rows:
                known_same = None if known is None else int(np.array_equal(known, cur[r - 1][PAD : cols + PAD]))
                same = io(row_ones[prev_flag] / row_total[prev_flag], known_same)
                row_ones[prev_flag] += same
                row_total[prev_flag] += 1.0
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
                p = prior[i & prior_mask]
                inputs = [256, stretch[int(p * 4096)]]
                for mask, weight, ones, total in levels:
                    key = i & mask
                    q = (ones.get(key, 0.0) + weight * p) / (total.get(key, 0.0) + weight)
                    inputs.append(stretch[int(q * 4096)])
                edge = 0
                if cells is not None:
                    edge, colour = cells[0][r][c], cells[1][r][c]
                    ref_key = (i & 0xF) | ((i >> len(TEMPLATE)) & 1) << 4 | edge << 5 | _colour_side(colour, colour_sums) << 9
                    q = (ref_ones.get(ref_key, 0.0) + REFERENCE_WEIGHT * p) / (ref_total.get(ref_key, 0.0) + REFERENCE_WEIGHT)
                    inputs.append(stretch[int(q * 4096)])
                w = weights[(i & 1) + ((i >> 1) & 1) + ((i >> 2) & 1) + ((i >> 3) & 1) + 5 * (edge != 0)]
                dot = sum(a * b for a, b in zip(w, inputs)) >> 16
                pm = squash(dot)
                value = None if known is None else int(known[c - PAD])
                value = io(pm / 4096, value)
                err = (value << 12) - pm
                for j in range(n_inputs):
                    w[j] += (inputs[j] * err) >> LEARNING_RATE
                for mask, _, ones, total in levels:
                    key = i & mask
                    ones[key] = ones.get(key, 0.0) + value
                    total[key] = total.get(key, 0.0) + 1.0
                if cells is not None:
                    ref_ones[ref_key] = ref_ones.get(ref_key, 0.0) + value
                    ref_total[ref_key] = ref_total.get(ref_key, 0.0) + 1.0
                    sums = colour_sums[value]
                    for j in range(3):
                        sums[j] += colour[j]
                    sums[3] += 1
                row[c] = value
        padded[k] = cur
        union |= padded[k]
    return padded[:, PAD : rows + PAD, PAD : cols + PAD].astype(bool)


class CabacMaskCoder(GridMaskCoder):
    """Context-adaptive binary arithmetic coding on the 1/scale grid (JBIG-style contexts)."""

    name = "cabac"
    version = 2

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
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

        _code(put, len(masks), rows, cols, grids, self.options.scale == 1, reference)
        encoder = RangeEncoder()
        encoder.encode(np.array(bits, dtype=np.int32), Bernoulli(perfect=False), np.array(probs, dtype=np.float64))
        expected = [g for g in grids]
        data = words_to_bytes(encoder.get_compressed(), lambda d: self._decodes_to(d, expected, width, height, reference))
        # all-empty masks can trim to nothing; one zero byte decodes the same (missing words read
        # as zeros) and keeps "objects with an empty mask section" an error for the decoder
        return data or b"\0"

    def _decodes_to(self, data: bytes, expected: list[np.ndarray], width: int, height: int, reference: Image.Image | None) -> bool:
        try:
            out = self.decode(data, len(expected), width, height, reference)
        except FormatError:
            return False
        return all(np.array_equal(a, b) for a, b in zip(out, expected))

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        if self.no_objects(data, count):
            return []
        # every decision costs at least log2(4096/4095) bits, and a stream holds at most 64 bits
        # once the decoder has read past its data: anything beyond is corrupt, not slow
        budget = [4096 * (8 * len(data) + 64)]
        if count * rows * cols > budget[0]:
            raise FormatError(f"corrupt mask section ({count} masks in {len(data)} bytes)")
        decoder = RangeDecoder(bytes_to_words(data))

        def get(p: float, bit: int | None) -> int:
            budget[0] -= 1
            if budget[0] < 0:
                raise FormatError("corrupt mask section (decodes past its end)")
            try:
                return int(decoder.decode(Bernoulli(p, perfect=False)))
            except (AssertionError, ValueError) as exc:
                raise FormatError(f"corrupt mask section ({exc})") from None

        return list(_code(get, count, rows, cols, None, self.options.scale == 1, reference))


@hookimpl
def register_entropy_coders(register: Register) -> None:
    register(CabacMaskCoder)
