"""``cabac`` mask coder: context-adaptive binary arithmetic coding of masks on the latent grid.

Masks are reduced to the ``1/scale`` grid the decoder uses (``scale=1``: full resolution) and
coded losslessly there, one after another, in raster order with a binary arithmetic coder
(compiled with numba, :mod:`sedic_plugins.mask_coders.cabac.kernel`):

- at full resolution (``scale=1``) each row first gets a "same as the row above" flag (JBIG's
  typical prediction) so that uniform rows cost one decision (on the small grid it costs more
  than it saves);
- every other pixel is predicted from a 16-pixel causal template of the current mask (JBIG-like,
  nearest pixels first) plus the co-located pixel and the pixel below it in the union of the
  masks already coded (objects rarely overlap, and when they do they overlap consistently);
- predictions: a static prior per 16-pixel context, measured on synthetic shapes and shipped
  (``prior.npz``), and adaptive counts on 4-, 10- and 16-pixel contexts (each with the two
  other-mask pixels) smoothed towards that prior, combined by a logistic mixer whose weights
  (one set per number of set nearest neighbours and reference edge presence) learn online;
- given the decoded reference image (which the decoder has before the masks), one more adaptive
  model adds what the reference says about the cell, block-averaged onto the grid: whether its
  colour changes to the left / top neighbour (GrabCut masks follow colour edges), and whether
  it is closer to the mean colour of this mask's cells coded so far as set or as unset.

The mixer and the reference features run in integer arithmetic and the counts use IEEE division
only, so encoder and decoder compute bit-identical probabilities on any platform. Version 3 (the
compiled coder, same model) replaced constriction's range coder of version 2.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from sedic_kit.errors import FormatError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.masks import grid_size

from ..grid import GridMaskCoder

TEMPLATE = (
    (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, -2), (-2, 0), (-1, -2), (-1, 2), (-2, -1), (-2, 1),
    (0, -3), (-2, -2), (-2, 2), (-1, -3), (-1, 3), (-3, 0),
)
"""Causal neighbours (row, column offsets) of the current mask, nearest first."""
PRIOR_BITS = 16
"""The shipped prior is indexed by the first ``PRIOR_BITS`` template pixels."""
OTHERS = ((0, 0), (1, 0))
"""Offsets read from the union of the previously coded masks."""
LEVELS = ((0xF, 0.5), (0x3FF, 32.0), (0xFFFF, 8.0))
"""Adaptive count models: (template pixel bit mask, pseudo-count of the prior); each also sees ``OTHERS``."""
EDGE_STEPS = (20, 60)
"""Thresholds on the summed absolute RGB difference between neighbouring reference cells."""
REFERENCE_WEIGHT = 0.25
"""Pseudo-count of the prior in the reference-conditioned model."""
PRIOR_FILE = Path(__file__).with_name("prior.npz")
DECISION_WORK = 7
"""Decode cost of one grid decision in plain pixels (measured, BENCHMARKS.md "Decode budget")."""
PAD = 3


@lru_cache(maxsize=1)
def _prior() -> list[float]:
    """P(pixel set) per context of the first ``PRIOR_BITS`` template pixels, from synthetic shapes."""
    with np.load(PRIOR_FILE, allow_pickle=False) as z:
        counts = z["counts"].astype(np.float64)
    return list((counts[:, 1] + 0.5) / (counts.sum(axis=1) + 1.0))


SQUASH_KNOTS = (
    1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048,
    2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095,
)
"""4096 / (1 + e^-x) at x = -8, -7.5, ..., 8 (x in 1/256 units: -2048 ... 2048 step 128)."""
LEARNING_RATE = 10
"""Mixer weight update shift (higher: slower)."""


@lru_cache(maxsize=1)
def _stretch_table() -> list[int]:
    """Inverse of the kernel's fixed-point logistic ``squash`` over 0..4095 (integer arithmetic only)."""
    from .kernel import _squash

    knots = np.array(SQUASH_KNOTS, np.int64)
    table, x = [], -2047
    for p in range(4096):
        while x < 2047 and _squash(x, knots) < p:
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


def _reference_cells(reference: Image.Image | None, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded per-cell edge codes (left step + 3 * top step) and mean colours of the reference
    (two empty arrays without a reference)."""
    if reference is None:
        return np.zeros((0, 0), np.int64), np.zeros((0, 0, 3), np.int64)
    g = block_means(reference, rows, cols)
    left = np.zeros((rows, cols), dtype=np.int64)
    top = np.zeros((rows, cols), dtype=np.int64)
    left[:, 1:] = np.abs(g[:, 1:] - g[:, :-1]).sum(axis=2)
    top[1:] = np.abs(g[1:] - g[:-1]).sum(axis=2)
    codes = np.pad(np.digitize(left, EDGE_STEPS) + 3 * np.digitize(top, EDGE_STEPS), PAD).astype(np.int64)
    colours = np.pad(g, ((PAD, PAD), (PAD, PAD), (0, 0))).astype(np.int64)
    return codes, colours


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, ...]:
    """Model constants as the arrays the compiled walk takes."""
    return (
        np.array(TEMPLATE, np.int64),
        np.array(OTHERS, np.int64),
        np.array([template_bits.bit_length() for template_bits, _ in LEVELS], np.int64),
        np.array([weight for _, weight in LEVELS], np.float64),
        np.array(_prior(), np.float64),
        np.array(_stretch_table(), np.int64),
        np.array(SQUASH_KNOTS, np.int64),
    )


def _walk(masks: np.ndarray, encoding: bool, data: np.ndarray, typical_rows: bool, reference: Image.Image | None) -> int:
    """Code or decode the padded ``masks`` stack in place (see :func:`kernel.walk`)."""
    from .kernel import walk  # numba: compiled once, cached beside the module

    template, others, level_bits, level_weights, prior, stretch, knots = _tables()
    rows, cols = masks.shape[1] - 2 * PAD, masks.shape[2] - 2 * PAD
    edges, colours = _reference_cells(reference, rows, cols)
    return walk(
        masks, encoding, data, PAD, typical_rows, edges, colours, template, others, level_bits, level_weights,
        REFERENCE_WEIGHT, prior, PRIOR_BITS, stretch, knots, LEARNING_RATE,
    )


class CabacMaskCoder(GridMaskCoder):
    """Context-adaptive binary arithmetic coding on the 1/scale grid (JBIG-style contexts)."""

    name = "cabac"
    version = 3

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        rows, cols = grid_size(width, height, self.options.scale)
        if not masks:
            return b""
        grids = self.stack(masks, width, height).reshape(len(masks), rows, cols)
        padded = np.pad(grids.astype(np.uint8), ((0, 0), (PAD, PAD), (PAD, PAD)))
        out = np.empty(4 * grids.shape[0] * rows * (cols + 1) + 8, np.uint8)  # <= 4 bytes per decision
        size = _walk(padded, True, out, self.options.scale == 1, reference)
        # all-empty masks can code to nothing; one zero byte decodes the same (the decoder reads
        # zeros past the end) and keeps "objects with an empty mask section" an error for the decoder
        return out[:size].tobytes() or b"\0"

    def decode_work(self, data: bytes, count: int, width: int, height: int) -> int:
        """Every grid cell of every mask is one adaptive decision (:data:`DECISION_WORK` plain
        pixels), whatever the section's length: at ``scale=1`` three masks of the image's size."""
        rows, cols = grid_size(width, height, self.options.scale)
        return max(width * height, count * rows * cols * DECISION_WORK)

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        if self.no_objects(data, count):
            return []
        # every decision costs at least log2(4096/4095) bits, and the coder settles at most 32 bits
        # past the data: a stream announcing more decisions than that is corrupt, not slow
        budget = 4096 * (8 * len(data) + 64)
        if count * rows * cols > budget:
            raise FormatError(f"corrupt mask section ({count} masks in {len(data)} bytes)")
        padded = np.zeros((count, rows + 2 * PAD, cols + 2 * PAD), dtype=np.uint8)
        read = _walk(padded, False, np.frombuffer(data, np.uint8).copy(), self.options.scale == 1, reference)
        if read < len(data):  # a valid stream is read to its end (the encoder writes no spare byte)
            raise FormatError(f"corrupt mask section ({len(data) - read} bytes left over)")
        return list(padded[:, PAD : rows + PAD, PAD : cols + PAD].astype(bool))


@hookimpl
def register_entropy_coders(register: Register) -> None:
    register(CabacMaskCoder)
