"""Short numeric ids of sedic-kit's own decoder plugins in ``.sedic`` format 2 (docs/format.md).

An id stands for one plugin *version* and the order of its decode parameters, so the header
spends one byte on a built-in plugin with default parameters. The table only ever grows: a
version bump adds a new id and the old one stays, so old files still name what wrote them.
Plugins not in the table (third-party ones, or a version not listed yet) are written by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from .roles import Role


@dataclass(frozen=True)
class BuiltinId:
    """What a numeric id means: plugin name, version and decode-parameter order."""

    name: str
    version: int
    params: tuple[str, ...] = ()


_COMPRESSAI = ("quality", "metric", "pretrained", "downscale")
_GRID = ("scale",)
_ORAG = (
    "control", "object_steps", "global_steps", "scheduler", "cfg_scale", "negative_prompt",
    "control_scale", "eta", "guidance_threshold", "guidance_block", "strength", "seed",
)  # fmt: skip
_ORAG2 = (*_ORAG, "preset", "object_cfg_scale", "global_cfg_scale", "guidance_reduce", "resolution")
_ORAG3 = (*_ORAG2, "object_scheduler", "global_scheduler", "tcd_gamma", "lora_scale")
_ORAG4 = (*_ORAG3, "stage_images")

BUILTIN_IDS: dict[Role, dict[int, BuiltinId]] = {
    Role.reference_codec: {
        1: BuiltinId("avif", 2, ("subsampling",)),
        2: BuiltinId("heic", 2, ("chroma", "preset")),
        3: BuiltinId("webp", 2),
        4: BuiltinId("jpeg", 1),
        5: BuiltinId("cheng2020-attn", 1, _COMPRESSAI),
        6: BuiltinId("cheng2020-anchor", 1, _COMPRESSAI),
        7: BuiltinId("mbt2018", 1, _COMPRESSAI),
        8: BuiltinId("mbt2018-mean", 1, _COMPRESSAI),
        9: BuiltinId("bmshj2018-hyperprior", 1, _COMPRESSAI),
        10: BuiltinId("avif", 3, ("subsampling",)),
        11: BuiltinId("heic", 3, ("chroma", "preset")),
    },
    Role.text_coder: {
        1: BuiltinId("lm", 1),
        2: BuiltinId("huffman", 1),
        3: BuiltinId("brotli", 1),
        4: BuiltinId("zlib", 1),
        5: BuiltinId("utf8", 1),
    },
    Role.mask_coder: {
        1: BuiltinId("cabac", 2, _GRID),
        2: BuiltinId("golomb", 1, _GRID),
        3: BuiltinId("jbig1", 1, _GRID),
        4: BuiltinId("png", 1, _GRID),
        5: BuiltinId("raw", 1, _GRID),
        6: BuiltinId("cabac", 3, _GRID),
    },
    Role.restorer: {
        1: BuiltinId("upsample", 1, ("filter",)),
        2: BuiltinId("orag", 1, _ORAG),
        3: BuiltinId("orag", 2, _ORAG2),
        4: BuiltinId("orag", 3, _ORAG3),
        5: BuiltinId("orag", 4, _ORAG4),
    },
}


def builtin_id(role: Role, name: str, version: int) -> int | None:
    """The id of ``name`` at ``version`` for ``role``, or None when it is written by name."""
    for number, entry in BUILTIN_IDS[role].items():
        if (entry.name, entry.version) == (name, version):
            return number
    return None
