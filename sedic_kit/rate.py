"""Rate control: choose the reference codec's setting so the whole file fits a bit budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from .errors import SedicError
from .profiles import instantiate
from .roles import ReferenceCodec


@dataclass
class RateChoice:
    """The setting chosen, the file it gave and how the search went."""

    codec: ReferenceCodec
    setting: dict[str, Any]
    data: bytes
    bits: dict[str, int]
    fits: bool
    tried: int


def fit_reference(
    codec: ReferenceCodec,
    budget_bits: int,
    build: Callable[[ReferenceCodec], tuple[bytes, dict[str, int]]],
) -> RateChoice:
    """Binary search ``codec.rate_ladder()`` for its highest-rate setting whose file fits ``budget_bits``.

    ``build(codec)`` codes the reference with ``codec`` and returns the whole file and its bits.
    Whatever the ladder's order, the search ends on a setting that fits next to one that does
    not; the two settings above it are also tried, and the largest fitting file of all tried is
    kept. When nothing fits, the lowest setting is returned with ``fits=False``.
    """
    ladder = codec.rate_ladder()
    if not ladder:
        raise SedicError(f"reference_codec '{codec.name}' lists no rate settings, so it cannot target a bitrate")
    base = codec.options.model_dump()
    cache: dict[int, tuple[ReferenceCodec, bytes, dict[str, int]]] = {}

    def attempt(i: int) -> tuple[ReferenceCodec, bytes, dict[str, int]]:
        if i not in cache:
            plugin = cast(ReferenceCodec, instantiate(type(codec), {**base, **ladder[i]}, where="rate ladder"))
            cache[i] = (plugin, *build(plugin))
        return cache[i]

    def fits(i: int) -> bool:
        return 8 * len(attempt(i)[1]) <= budget_bits

    lo, hi = -1, len(ladder)  # invariant: ladder[lo] fits (or lo == -1), ladder[hi] does not (or hi == len)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    for i in range(lo + 1, min(lo + 3, len(ladder))):
        fits(i)
    fitting = [i for i in cache if fits(i)]
    if not fitting:
        plugin, data, bits = attempt(0)
        return RateChoice(plugin, ladder[0], data, bits, False, len(cache))
    best = max(fitting, key=lambda i: len(cache[i][1]))
    plugin, data, bits = cache[best]
    return RateChoice(plugin, ladder[best], data, bits, True, len(cache))
