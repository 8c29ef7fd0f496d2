"""Rate control: the semantic knobs (J, l_d, l_all) for a target, then the reference setting that fits."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from pydantic import Field, field_validator

from .describe import truncate_words
from .errors import SedicError
from .payload import Payload
from .plugin_options import instantiate
from .roles import Options, ReferenceCodec

PAPER_POINTS = ((0.025, 1, 20, 30), (0.045, 3, 30, 50))
"""The paper's operating points (Section IV): bpp, J, l_d, l_all (0.02-0.03 and 0.04-0.05 bpp)."""


class RatePolicy(Options):
    """A profile's ``[rate]`` table: how ``--target-bpp`` sets J, l_d and l_all."""

    points: list[tuple[float, int, int, int]] = Field(
        default_factory=lambda: list(PAPER_POINTS),
        description="[bpp, J, l_d, l_all] operating points; linear between them, clamped outside",
    )
    redescribe: bool = Field(False, description="ask the describer afresh with the chosen limits instead of trimming its answer")

    @field_validator("points")
    @classmethod
    def _sorted(cls, points: list[tuple[float, int, int, int]]) -> list[tuple[float, int, int, int]]:
        if not points:
            raise ValueError("needs at least one [bpp, J, l_d, l_all] point")
        bpps = [p[0] for p in points]
        if any(b <= a for a, b in zip(bpps, bpps[1:])):
            raise ValueError("points must be in increasing bpp order")
        for _, j, ld, lall in points:
            if not (0 <= j <= 3 and 0 <= ld <= 30 and 0 <= lall <= 50):
                raise ValueError("J must be 0-3, l_d 0-30 and l_all 0-50 (the paper's limits)")
        return points

    def choose(self, target_bpp: float) -> SemanticBudget:
        """J, l_d and l_all for ``target_bpp``: interpolated between the two nearest points, rounded half up."""
        pts = self.points
        if target_bpp <= pts[0][0]:
            return SemanticBudget(*pts[0][1:])
        if target_bpp >= pts[-1][0]:
            return SemanticBudget(*pts[-1][1:])
        hi = next(i for i, p in enumerate(pts) if p[0] >= target_bpp)
        (b0, *k0), (b1, *k1) = pts[hi - 1], pts[hi]
        t = round((target_bpp - b0) / (b1 - b0), 9)  # 0.03 is a quarter of the way, not 0.2499...
        j, ld, lall = (math.floor(a + t * (b - a) + 0.5) for a, b in zip(k0, k1))
        return SemanticBudget(j, ld, lall)


@dataclass(frozen=True)
class SemanticBudget:
    """The paper's knobs: J objects, l_d words per object description, l_all caption words."""

    max_objects: int
    detail_words: int
    caption_words: int

    def describe(self) -> str:
        return f"J={self.max_objects}, l_d={self.detail_words}, l_all={self.caption_words}"

    def limits(self) -> dict[str, int]:
        """As describer options (``max_objects``, ``detail_words``, ``caption_words``)."""
        return {"max_objects": self.max_objects, "detail_words": self.detail_words, "caption_words": self.caption_words}


def trim(payload: Payload, budget: SemanticBudget) -> tuple[Payload, str]:
    """The first J objects (describers list them by importance), details and caption cut at word
    boundaries; and a note saying what was kept."""
    objects = [replace(o, details=truncate_words(o.details, budget.detail_words)) for o in payload.objects[: budget.max_objects]]
    caption = truncate_words(payload.caption, budget.caption_words)
    note = (
        f"kept {len(objects)} of {len(payload.objects)} objects, {len(caption.split())} of "
        f"{len(payload.caption.split())} caption words"
    )
    return replace(payload, caption=caption, objects=objects), note


@dataclass
class RateChoice:
    """The setting chosen, the file it gave and how the search went."""

    codec: ReferenceCodec
    setting: dict[str, Any]
    data: bytes
    bits: dict[str, int]
    fits: bool
    tried: int
    """Files built at the final setting (the costly ones)."""
    probes: int = 0
    """Files built at the codec's fast search setting."""


Build = Callable[[ReferenceCodec], tuple[bytes, dict[str, int]]]
Probe = Callable[[ReferenceCodec], bytes]


def fit_reference(codec: ReferenceCodec, budget_bits: int, build: Build, probe: Probe | None = None) -> RateChoice:
    """The highest-rate setting of ``codec.rate_ladder()`` whose whole file fits ``budget_bits``.

    ``build(codec)`` codes the reference with ``codec`` and returns the whole file and its bits
    per section; ``probe(codec)`` returns only the reference section. The ladder is binary
    searched (the search ends on a fitting setting next to one that does not; the two above are
    also tried). With a ``probe`` and the codec's fast :meth:`~ReferenceCodec.search_options`,
    the search runs on fast probes of the reference alone, added to the rest of the file as the
    last whole file had it and scaled by that file's real/probe reference ratio; the best rung
    is then coded for real, stepping down (or up) as the probes predict until a real file is
    the largest that fits. When nothing fits, the lowest setting is returned with ``fits=False``.
    """
    ladder = codec.rate_ladder()
    if not ladder:
        raise SedicError(f"reference_codec '{codec.name}' lists no rate settings, so it cannot target a bitrate")
    base = codec.options.model_dump()
    fast_options = codec.search_options() if probe is not None else {}
    finals: dict[int, tuple[ReferenceCodec, bytes, dict[str, int]]] = {}
    probes: dict[int, int] = {}  # rung -> reference bits of its fast probe
    model = {"rest": 0, "ratio": 1.0}  # bits outside the reference; real/probe reference bits

    def plugin_at(i: int, extra: dict[str, Any]) -> ReferenceCodec:
        return cast(ReferenceCodec, instantiate(type(codec), {**base, **ladder[i], **extra}, where="rate ladder"))

    def real(i: int) -> int:
        if i not in finals:
            plugin = plugin_at(i, {})
            data, bits = build(plugin)
            finals[i] = (plugin, data, bits)
            model["rest"] = 8 * len(data) - bits["reference"]
            if i in probes:
                model["ratio"] = bits["reference"] / max(probes[i], 1)
        return 8 * len(finals[i][1])

    def estimate(i: int) -> float:
        if not fast_options or probe is None:
            return real(i)
        if i not in probes:
            if not probes:  # the first probe is a whole file: it measures the rest of the file
                data, bits = build(plugin_at(i, fast_options))
                model["rest"] = 8 * len(data) - bits["reference"]
                probes[i] = bits["reference"]
            else:
                probes[i] = 8 * len(probe(plugin_at(i, fast_options)))
        return model["rest"] + probes[i] * model["ratio"]

    def fits(i: int) -> bool:
        return estimate(i) <= budget_bits

    lo, hi = -1, len(ladder)  # invariant: ladder[lo] fits (or lo == -1), ladder[hi] does not (or hi == len)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    for i in range(lo + 1, min(lo + 3, len(ladder))):
        fits(i)
    if fast_options:
        best = _settle(max([i for i in probes if fits(i)], default=0), budget_bits, fits, real, len(ladder))
    else:
        fitting = [i for i in finals if fits(i)]
        best = max(fitting, key=lambda i: len(finals[i][1])) if fitting else None
    if best is None:
        real(0)
        plugin, data, bits = finals[0]
        return RateChoice(plugin, ladder[0], data, bits, False, len(finals), len(probes))
    plugin, data, bits = finals[best]
    return RateChoice(plugin, ladder[best], data, bits, True, len(finals), len(probes))


def _settle(
    start: int, budget_bits: int, predicted_fits: Callable[[int], bool], real: Callable[[int], int], rungs: int
) -> int | None:
    """From the probes' best rung, the rung whose real file is the largest that fits (None: none fits).

    Every real file updates the prediction (``predicted_fits``); only a real file decides. Going
    up costs at most two more real files (the highest rung predicted to fit, then half way).
    """
    i = start
    if real(i) <= budget_bits:
        up = i  # one real try at the highest rung the updated prediction allows
        while up + 1 < rungs and predicted_fits(up + 1):
            up += 1
        if up > i and real(up) <= budget_bits:
            return up
        mid = (i + up) // 2  # overshot: one more real try half way
        return mid if mid > i and real(mid) <= budget_bits else i
    while i > 0:
        k = i - 1
        while k > 0 and not predicted_fits(k):
            k -= 1
        i = k
        if real(i) <= budget_bits:
            return i
    return None
