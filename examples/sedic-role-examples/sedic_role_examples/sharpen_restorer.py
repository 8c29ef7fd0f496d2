"""Restorer ``sharpen``: bicubic upsampling of the reference, then an unsharp mask.

A real restorer would also use ``payload.caption`` and each object's ``prompt`` and ``mask``
(at the mask coder's resolution: resize it to the image, e.g. ``sedic_kit.imaging.resize_mask``).
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageFilter
from pydantic import Field

from sedic_kit import Options, Payload, Restorer, hookimpl


class SharpenOptions(Options):
    amount: int = Field(80, ge=0, le=500, description="unsharp-mask strength in percent")


class SharpenRestorer(Restorer[SharpenOptions]):
    """Deterministic: same file, same pixels."""

    name = "sharpen"
    version = 1
    decode_params = ("amount",)

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        full = reference.convert("RGB").resize((payload.width, payload.height), Image.Resampling.BICUBIC)
        return full.filter(ImageFilter.UnsharpMask(radius=2, percent=self.options.amount, threshold=2))


@hookimpl
def register_restorers(register: Callable[[type], None]) -> None:
    register(SharpenRestorer)
