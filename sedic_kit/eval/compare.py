"""``compare``: evaluate several profiles on one image set and write JSON, CSV, plots and HTML."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..version import __version__
from ..files import write_atomic
from ..errors import SedicError
from .bd import bd_table
from .datasets import PAPER_SET_SIZES, SETS, list_images, prepare
from .metrics import SET_METRICS, MetricSuite
from .patch_fid import flags, patch_boxes
from .report import metric_keys, paper_numbers, plot_bits, plot_rd, quoted, write_csv, write_html
from .runner import EvalConfig, Evaluation, dist_state


def overrides_for(profile: str, overrides: list[str]) -> list[str]:
    """``ROLE.KEY=VALUE`` applies to every profile, ``PROFILE:ROLE.KEY=VALUE`` to that profile only."""
    out = []
    for item in overrides:
        key = item.partition("=")[0]
        if ":" in key:
            target, _, rest = item.partition(":")
            if target == profile:
                out.append(rest)
        else:
            out.append(item)
    return out


PAPER_PROTOCOLS = {spec.paper_set: spec.protocol for spec in SETS.values() if spec.paper_set}
"""How the paper prepared each set (Section IV): its numbers are comparable only under the same protocol."""


def paper_comparable(dataset: str | None, protocol: str, images: int) -> str | None:
    """Why the paper's numbers for ``dataset`` cannot go on these curves (``None``: they can)."""
    if dataset is None:
        return "no paper set named"
    if PAPER_PROTOCOLS.get(dataset) != protocol:
        return f"the paper prepared {dataset} as {PAPER_PROTOCOLS.get(dataset)}, this run as {protocol}"
    if PAPER_SET_SIZES.get(dataset) != images:
        return f"{images} images, not the paper's {PAPER_SET_SIZES.get(dataset)}"
    return None


def realism_setup(suite: MetricSuite, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The FID/KID protocol, which of them ran, and the samples it draws from these images (flagged when too few)."""
    samples = sum(len(patch_boxes(r["width"], r["height"], suite.realism)) for r in records)
    return {
        **suite.realism.to_dict(), "samples": samples, "flags": flags(samples, suite.realism),
        "metrics": sorted(suite.set), "unavailable": sorted(k for k in suite.unavailable if k in SET_METRICS),
    }


def curves(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-rate summaries grouped by profile, in ``compressai.utils.eval_model`` shape: every
    ``results`` value is a list with one entry per rate point, in increasing target order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for s in points:
        grouped.setdefault(s["name"], []).append(s)
    out = []
    for name, group in grouped.items():
        group.sort(key=lambda s: -1.0 if s.get("target_bpp") is None else s["target_bpp"])
        keys = list(dict.fromkeys(k for s in group for k in s["results"]))
        out.append({
            "name": name,
            "description": group[0]["description"],
            "targets": [s.get("target_bpp") for s in group],
            "results": {k: [s["results"].get(k, [None])[0] for s in group] for k in keys},
            "unavailable": {k: v for s in group for k, v in s.get("unavailable", {}).items()},
            "warnings": [s.get("warnings", []) for s in group],
            "realism": [s.get("realism", {}).get("metrics", {}) for s in group],
        })
    return out


def compare(
    profiles: list[str], cfg: EvalConfig, dataset: str | None, crop: int = 256,
    targets: list[float] | None = None, anchor: str | None = None, command: str = "", suite: MetricSuite | None = None,
) -> dict[str, Path] | None:
    """Run every profile at every target rate (resumably, on all processes); rank 0 writes the
    outputs and returns their paths. BD deltas are against ``anchor`` (default: the first profile);
    ``suite``: the metrics (default: ``cfg``'s, loaded here)."""
    suite = suite or MetricSuite(cfg.metrics, cfg.clip_model, cfg.realism)
    points: list[dict[str, Any] | None] = []
    names: list[str] = []
    for p in profiles:
        base = replace(cfg, profile=p, overrides=overrides_for(p, cfg.overrides))
        codec = None
        for target in [*targets] if targets else [None]:
            evaluation = Evaluation(replace(base, target_bpp=target), suite, codec)
            codec = evaluation.codec
            points.append(evaluation.run())
        names.append(evaluation.name)
    if len(set(names)) != len(names):
        raise SedicError(f"profiles must have distinct names, got {', '.join(names)}")
    if not dist_state().is_main_process:
        return None
    done: list[dict[str, Any]] = [s for s in points if s is not None]
    lines = curves(done)
    anchor_name = names[profiles.index(anchor)] if anchor else names[0]
    bd = bd_table(lines, anchor_name, metric_keys(done)) if targets and len(targets) > 1 and len(lines) > 1 else []
    out = cfg.out
    comparable = paper_comparable(dataset, cfg.protocol, len(list_images(cfg.data)))
    paper = quoted(dataset) if comparable is None else {}
    bits_quoted = paper_numbers()["table_VIII"]["datasets"].get(dataset) if dataset else None
    count = len(list_images(cfg.data))
    setup = {
        "data": str(cfg.data), "protocol": cfg.protocol, "images": count, "paper_set": dataset,
        "paper_set_images": PAPER_SET_SIZES.get(dataset or ""), "paper_points": comparable or "shown", "targets": targets or [],
        "anchor": anchor_name, "sedic_kit_version": __version__, "command": command,
        "realism": realism_setup(suite, done[0]["images"]),
    }
    combined = {
        "name": "compare",
        "description": f"{', '.join(names)} on {cfg.data} ({cfg.protocol})",
        "dataset": dataset,
        "setup": setup,
        "results": [{k: c[k] for k in ("name", "description", "targets", "results", "unavailable", "warnings", "realism")} for c in lines],
        "bd": bd,
        "quoted": {"paper": paper_numbers()["source"], "points": paper, "bit_allocation": bits_quoted},
    }
    write_atomic(out / "compare.json", (json.dumps(combined, indent=2) + "\n").encode())
    write_csv(out / "results.csv", done, bd)
    plots = plot_rd(out / "plots", lines, paper)
    bits = plot_bits(out / "plots" / "bit-allocation.png", done, bits_quoted)
    data = {p.name: p for p in list_images(cfg.data)}
    report = write_html(out, done, lambda name: prepare(data[name], cfg.protocol, cfg.max_pixels).image, plots, bits, crop, setup, bd)
    return {
        "json": out / "compare.json", "csv": out / "results.csv", "report": report,
        **{f"plot:{k}": p for k, p in plots.items()}, "plot:bit-allocation": bits,
    }
