"""The ``golomb`` mask coder: raster runs of the stacked grid, Golomb-Rice coded (parameter in the section)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sedic_kit.errors import FormatError
from sedic_kit.masks import grid_size

from ..shared.bits import BitReader, BitWriter
from .grid import GridMaskCoder


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
