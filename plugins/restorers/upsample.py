"""Weight-free restorer: upsamples the reference image to full size."""

from __future__ import annotations

from typing import Literal

from PIL import Image

from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.payload import Payload
from sedic_kit.roles import Options, Restorer

FILTERS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


class UpsampleOptions(Options):
    filter: Literal["lanczos", "bicubic", "bilinear"] = "lanczos"


class UpsampleRestorer(Restorer[UpsampleOptions]):
    """Ignores the semantics; resizes the reference to the original size."""

    name = "upsample"
    decode_params = ("filter",)

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        image = reference.convert("RGB")
        size = (payload.width, payload.height)
        return image if image.size == size else image.resize(size, FILTERS[self.options.filter])


@hookimpl
def register_restorers(register: Register) -> None:
    register(UpsampleRestorer)
