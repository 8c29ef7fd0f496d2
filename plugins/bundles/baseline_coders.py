"""Baseline entropy coders: ``utf8``, ``zlib`` and ``brotli`` text; ``raw`` and ``png`` grid masks."""

from sedic_kit.hookspecs import Register, hookimpl

from ..mask_coders.grid import MASK_CODERS
from ..text_coders.baseline import TEXT_CODERS


@hookimpl
def register_entropy_coders(register: Register) -> None:
    for cls in (*TEXT_CODERS, *MASK_CODERS):
        register(cls)
