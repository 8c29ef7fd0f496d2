"""Compiled (numba) walk of the ``cabac`` mask coder: context model, mixer and binary coder.

One function codes or decodes all masks of an image in machine code; the Python side only
prepares the tables (see :mod:`sedic_plugins.mask_coders.cabac` for the model). The binary arithmetic
coder is the carry-less 32-bit coder of the PAQ family (12-bit probabilities, one byte out per
settled top byte); constriction cannot be called from compiled code, and a call per decision
from Python is what made the coder slow.

Everything is integer arithmetic or IEEE division (no fast-math), so the encoder and the decoder
compute identical probabilities on any platform.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TOP = np.int64(0xFF000000)
WORD = np.int64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _squash(x: int, knots: np.ndarray) -> int:
    """Logistic function in fixed point: x in 1/256 units -> probability in 1/4096 units."""
    if x >= 2047:
        return 4095
    if x <= -2047:
        return 1
    i, w = (x + 2048) >> 7, (x + 2048) & 127
    return (knots[i] * (128 - w) + knots[i + 1] * w + 64) >> 7


@njit(cache=True, inline="always")
def _colour_side(colour: np.ndarray, sums: np.ndarray) -> int:
    """0: no cell of one kind yet; 1: ``colour`` nearer the set cells' mean; 2: nearer the unset ones'."""
    n_unset, n_set = sums[0, 3], sums[1, 3]
    if n_unset == 0 or n_set == 0:
        return 0
    d_one = 0
    d_unset = 0
    for j in range(3):
        d_one += abs(colour[j] * n_set - sums[1, j])
        d_unset += abs(colour[j] * n_unset - sums[0, j])
    d_one *= n_unset
    d_unset *= n_set
    return 1 + (2 * d_one) // (d_one + d_unset + 1)


@njit(cache=True, inline="always")
def _code_bit(
    bit: int, p: int, encoding: bool, data: np.ndarray, x1: np.int64, x2: np.int64, x: np.int64, pos: int
) -> tuple[int, np.int64, np.int64, np.int64, int]:
    """One binary decision with P(1) = p / 4096: codes ``bit`` (encoding) or reads it (decoding).

    Returns the bit and the coder state ``x1, x2, x, pos``.
    """
    xmid = x1 + ((x2 - x1) >> 12) * p
    if not encoding:
        bit = 1 if x <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & TOP) == 0:
        if encoding:
            data[pos] = x2 >> 24
        else:
            x = ((x << 8) & WORD) | (data[pos] if pos < data.size else 0)
        pos += 1
        x1 = (x1 << 8) & WORD
        x2 = ((x2 << 8) & WORD) | 255
    return bit, x1, x2, x, pos


@njit(cache=True)
def walk(
    masks: np.ndarray,  # (count, rows + 2 pad, cols + 2 pad) uint8: input (encoding) or output (decoding)
    encoding: bool,
    data: np.ndarray,  # uint8: the coded bytes (decoding) or an output buffer (encoding)
    pad: int,
    typical_rows: bool,
    edges: np.ndarray,  # (rows + 2 pad, cols + 2 pad) int64, empty without a reference
    colours: np.ndarray,  # (rows + 2 pad, cols + 2 pad, 3) int64
    template: np.ndarray,  # (n, 2) int64 causal offsets of the current mask
    others: np.ndarray,  # (m, 2) int64 offsets in the union of the masks coded before
    level_bits: np.ndarray,  # template bits of each adaptive level (4, 10, 16)
    level_weights: np.ndarray,  # prior pseudo-count of each level
    reference_weight: float,
    prior: np.ndarray,  # P(set) per context of the first prior_bits template pixels
    prior_bits: int,
    stretch: np.ndarray,
    knots: np.ndarray,
    learning_rate: int,
) -> int:
    """Code (``encoding``) or decode every mask; returns the number of bytes written (encoding) or
    read, zeros past the end included (decoding)."""
    count, prows, pcols = masks.shape
    rows, cols = prows - 2 * pad, pcols - 2 * pad
    n_t, n_o = template.shape[0], others.shape[0]
    has_ref = edges.size > 0
    n_levels = level_bits.shape[0]
    n_models = n_levels + (1 if has_ref else 0)
    n_inputs = n_models + 2
    tables = []
    for lv in range(n_levels):
        tables.append(np.zeros((2, 1 << (level_bits[lv] + n_o))))
    ref_table = np.zeros((2, 1 << 12))
    weights = np.zeros((10, n_inputs), np.int64)
    weights[:, 2:] = (1 << 16) // n_models
    inputs = np.zeros(n_inputs, np.int64)
    row_counts = np.array([[0.5, 1.0], [0.5, 1.0]])  # (ones, total) after a row flag of 0 / 1
    union = np.zeros((prows, pcols), np.uint8)
    colour_sums = np.zeros((2, 4), np.int64)
    prior_mask = (1 << prior_bits) - 1
    # coder state: [x1, x2] while encoding, [x1, x2, x] while decoding; pos: next byte
    x1 = np.int64(0)
    x2 = WORD
    x = np.int64(0)
    pos = 0
    if not encoding:
        for _ in range(4):
            x = (x << 8) | (data[pos] if pos < data.size else 0)
            pos += 1
    for k in range(count):
        cur = masks[k]
        if not encoding:
            cur[:, :] = 0
        prev_flag = 0
        colour_sums[:, :] = 0
        for r in range(pad, rows + pad):
            if typical_rows:
                same = 1
                for c in range(pad, cols + pad):
                    if cur[r, c] != cur[r - 1, c]:
                        same = 0
                        break
                p = int(row_counts[prev_flag, 0] / row_counts[prev_flag, 1] * 4096)
                p = min(max(p, 1), 4095)
                bit, x1, x2, x, pos = _code_bit(same, p, encoding, data, x1, x2, x, pos)
                same = bit
                row_counts[prev_flag, 0] += same
                row_counts[prev_flag, 1] += 1.0
                prev_flag = same
                if same:
                    for c in range(pad, cols + pad):
                        cur[r, c] = cur[r - 1, c]
                    continue
            for c in range(pad, cols + pad):
                i = 0
                for t in range(n_t):
                    if cur[r + template[t, 0], c + template[t, 1]]:
                        i |= 1 << t
                for t in range(n_o):
                    if union[r + others[t, 0], c + others[t, 1]]:
                        i |= 1 << (n_t + t)
                q0 = prior[i & prior_mask]
                inputs[0] = 256
                inputs[1] = stretch[int(q0 * 4096)]
                high = i >> n_t
                for lv in range(n_levels):
                    key = (i & ((1 << level_bits[lv]) - 1)) | (high << level_bits[lv])
                    table = tables[lv]
                    w = level_weights[lv]
                    inputs[2 + lv] = stretch[int((table[0, key] + w * q0) / (table[1, key] + w) * 4096)]
                edge = 0
                ref_key = 0
                if has_ref:
                    edge = edges[r, c]
                    side = _colour_side(colours[r, c], colour_sums)
                    ref_key = (i & 0xF) | ((high & 1) << 4) | (edge << 5) | (side << 9)
                    q = (ref_table[0, ref_key] + reference_weight * q0) / (ref_table[1, ref_key] + reference_weight)
                    inputs[2 + n_levels] = stretch[int(q * 4096)]
                neighbours = (i & 1) + ((i >> 1) & 1) + ((i >> 2) & 1) + ((i >> 3) & 1)
                wrow = neighbours + (5 if edge != 0 else 0)
                dot = 0
                for j in range(n_inputs):
                    dot += weights[wrow, j] * inputs[j]
                p = _squash(dot >> 16, knots)
                bit, x1, x2, x, pos = _code_bit(int(cur[r, c]), p, encoding, data, x1, x2, x, pos)
                err = (bit << 12) - p
                for j in range(n_inputs):
                    weights[wrow, j] += (inputs[j] * err) >> learning_rate
                for lv in range(n_levels):
                    key = (i & ((1 << level_bits[lv]) - 1)) | (high << level_bits[lv])
                    tables[lv][0, key] += bit
                    tables[lv][1, key] += 1.0
                if has_ref:
                    ref_table[0, ref_key] += bit
                    ref_table[1, ref_key] += 1.0
                    for j in range(3):
                        colour_sums[bit, j] += colours[r, c, j]
                    colour_sums[bit, 3] += 1
                cur[r, c] = bit
        for r in range(prows):
            for c in range(pcols):
                union[r, c] |= cur[r, c]
    if not encoding:
        return pos  # bytes the decoder consumed (it reads 4 ahead): fewer than the data means corrupt
    # flush: the shortest byte string whose zero-padded value lies in [x1, x2]
    for n in range(1, 5):
        shift = 32 - 8 * n
        v = ((x1 + (1 << shift) - 1) >> shift) << shift
        if v <= x2:
            for j in range(n):
                data[pos] = (v >> (24 - 8 * j)) & 255
                pos += 1
            break
    while pos > 0 and data[pos - 1] == 0:
        pos -= 1  # the decoder reads zeros past the end
    return pos
