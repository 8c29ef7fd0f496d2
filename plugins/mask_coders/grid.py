"""Grid mask coders: masks on a ``1/scale`` grid, stacked; ``raw`` bits and a 1-bit ``png``."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image
from pydantic import Field

from sedic_kit.errors import FormatError
from sedic_kit.masks import grid_size, to_grid
from sedic_kit.roles import MaskCoder, Options


class GridOptions(Options):
    scale: int = Field(8, ge=1, le=64, description="code masks at 1/scale resolution (8 = SD latent grid)")


class GridMaskCoder(MaskCoder[GridOptions]):
    """Masks reduced to a ``1/scale`` grid, stacked vertically, then coded."""

    decode_params = ("scale",)

    def stack(self, masks: list[np.ndarray], width: int, height: int) -> np.ndarray:
        rows, cols = grid_size(width, height, self.options.scale)
        if not masks:
            return np.zeros((0, cols), dtype=bool)
        return np.concatenate([to_grid(m, width, height, self.options.scale) for m in masks], axis=0)

    @staticmethod
    def no_objects(data: bytes, count: int) -> bool:
        """True when there is nothing to decode; the section must then be empty."""
        if count:
            return False
        if data:
            raise FormatError("mask section is not empty but there are no objects")
        return True

    def unstack(self, grid: np.ndarray, count: int, width: int, height: int) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        if grid.shape != (rows * count, cols):
            raise FormatError(f"mask section has shape {grid.shape}, expected {(rows * count, cols)}")
        return [grid[i * rows : (i + 1) * rows].copy() for i in range(count)]


class RawMaskCoder(GridMaskCoder):
    """One bit per grid cell (numpy packbits)."""

    name = "raw"

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        return np.packbits(self.stack(masks, width, height)).tobytes()

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        rows, cols = grid_size(width, height, self.options.scale)
        n = rows * cols * count
        if len(data) != (n + 7) // 8:
            raise FormatError(f"mask section is {len(data)} bytes, expected {(n + 7) // 8}")
        bits = np.unpackbits(np.frombuffer(data, np.uint8))[:n].astype(bool)
        return self.unstack(bits.reshape(rows * count, cols), count, width, height)


class PngMaskCoder(GridMaskCoder):
    """The stacked grid as a 1-bit PNG (zlib inside)."""

    name = "png"

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        grid = self.stack(masks, width, height)
        if grid.size == 0:
            return b""
        buf = io.BytesIO()
        Image.fromarray(grid).save(buf, "PNG", optimize=True)
        return buf.getvalue()

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        if self.no_objects(data, count):
            return []
        rows, cols = grid_size(width, height, self.options.scale)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below is stricter
                with Image.open(io.BytesIO(data)) as im:
                    if im.size != (cols, rows * count):  # from the PNG header, before inflating anything
                        raise FormatError(f"mask section is a {im.size[0]}x{im.size[1]} PNG, expected {cols}x{rows * count}")
                    grid = np.asarray(im.convert("1"), dtype=bool)
        except (OSError, ValueError) as exc:  # not a PNG, or a damaged one
            raise FormatError(f"corrupt mask section (PNG: {exc})") from None
        return self.unstack(grid, count, width, height)


MASK_CODERS = (RawMaskCoder, PngMaskCoder)
