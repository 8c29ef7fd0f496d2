"""Bjontegaard deltas (BD-rate, BD-metric) of rate sweeps against an anchor profile.

Computed by the ``bjontegaard`` package with piecewise cubic Hermite interpolation (PCHIP), as
in the JCT-VC/JVET common-test-condition sheets. Lower-is-better metrics (LPIPS, DISTS, NIQE,
...) are negated for the interpolation, so BD-rate is always "rate change at equal quality"
and BD-metric is "test minus anchor" in the metric's own units.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .metrics import HIGHER_IS_BETTER

METHOD = "pchip"


def _curve(rates: list[float | None], values: list[float | None], sign: float) -> tuple[np.ndarray, np.ndarray] | str:
    pts = sorted((r, sign * v) for r, v in zip(rates, values) if r is not None and v is not None and r > 0 and math.isfinite(v))
    if len(pts) < 2:
        return "needs two or more rate points"
    rate, value = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    if np.any(np.diff(rate) <= 0):
        return "two points at the same rate"
    if np.any(np.diff(value) <= 0):
        return "quality does not rise with rate"
    return rate, value


def bd_pair(
    anchor_rate: list[float | None], anchor_value: list[float | None],
    test_rate: list[float | None], test_value: list[float | None], higher_is_better: bool = True,
) -> tuple[float | None, float | None, str | None]:
    """``(BD-rate in %, BD-metric, reason)``; a delta is ``None`` with the reason when it is undefined."""
    import bjontegaard

    sign = 1.0 if higher_is_better else -1.0
    anchor, test = _curve(anchor_rate, anchor_value, sign), _curve(test_rate, test_value, sign)
    if isinstance(anchor, str):
        return None, None, f"anchor: {anchor}"
    if isinstance(test, str):
        return None, None, f"test: {test}"
    (ar, av), (tr, tv) = anchor, test
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rate = float(bjontegaard.bd_rate(ar, av, tr, tv, method=METHOD, require_matching_points=False, min_overlap=0))
        metric = sign * float(bjontegaard.bd_psnr(ar, av, tr, tv, method=METHOD, require_matching_points=False, min_overlap=0))
    reason = str(caught[0].message) if caught else None
    return (rate if math.isfinite(rate) else None), (metric if math.isfinite(metric) else None), reason


def bd_table(curves: list[dict[str, Any]], anchor: str, keys: list[str]) -> list[dict[str, Any]]:
    """One row per (profile other than ``anchor``, metric in ``keys`` measured for both): BD-rate and BD-metric."""
    by_name = {c["name"]: c for c in curves}
    base = by_name[anchor]["results"]
    rows = []
    for c in curves:
        if c["name"] == anchor:
            continue
        res = c["results"]
        for key in keys:
            if not any(v is not None for v in res.get(key, [])) or not any(v is not None for v in base.get(key, [])):
                continue  # unavailable here (listed with its reason elsewhere)
            rate, metric, reason = bd_pair(
                base["bpp"], base.get(key, []), res["bpp"], res.get(key, []), HIGHER_IS_BETTER[key]
            )
            rows.append({"profile": c["name"], "anchor": anchor, "metric": key, "bd_rate": rate, "bd_metric": metric, "note": reason})
    return rows
