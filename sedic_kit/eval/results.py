"""Per-image records to a ``compressai.utils.eval_model``-shaped summary (core-importable)."""

from __future__ import annotations

from typing import Any

from .. import __version__


def mean_of(records: list[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over records that have a value (``None`` when none has)."""
    vals = [r[key] for r in records if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def results_json(
    name: str,
    description: str,
    profile: dict[str, Any] | None,
    records: list[dict[str, Any]],
    metrics: tuple[str, ...] = ("psnr-rgb",),
    extra_results: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """``{"name", "description", "results": {key: [mean]}, ...}`` plus the per-image records.

    ``results`` holds ``bpp``, ``bpp-<section>`` (summing to ``bpp``), each per-image metric in
    ``metrics``, set-level values from ``extra_results`` and the mean coding times.
    """
    sections = sorted({k for r in records for k in r["bpp_sections"]})
    n = len(records)
    results: dict[str, list[float | None]] = {"bpp": [mean_of(records, "bpp")]}
    for s in sections:
        results[f"bpp-{s}"] = [sum(r["bpp_sections"].get(s, 0.0) for r in records) / n if n else None]
    for key in metrics:
        results[key] = [mean_of(records, key)]
    for key, value in (extra_results or {}).items():
        results[key] = [value]
    results["encoding_time"] = [mean_of(records, "encoding_time")]
    results["decoding_time"] = [mean_of(records, "decoding_time")]
    return {
        "name": name,
        "description": description,
        "profile": profile,
        "sedic_kit_version": __version__,
        "results": results,
        "images": records,
    }
