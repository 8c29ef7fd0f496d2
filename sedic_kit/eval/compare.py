"""``compare``: evaluate several profiles on one image set and write JSON, CSV, plots and HTML."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..codec import write_atomic
from .datasets import list_images, prepare
from .metrics import MetricSuite
from .report import paper_numbers, plot_bits, plot_rd, quoted, write_csv, write_html
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


def compare(profiles: list[str], cfg: EvalConfig, dataset: str | None, crop: int = 256) -> dict[str, Path] | None:
    """Run every profile (resumably, on all processes); rank 0 writes the outputs and returns their paths."""
    suite = MetricSuite(cfg.metrics, cfg.clip_model)
    summaries = [Evaluation(replace(cfg, profile=p, overrides=overrides_for(p, cfg.overrides)), suite).run() for p in profiles]
    if not dist_state().is_main_process:
        return None
    done: list[dict[str, Any]] = [s for s in summaries if s is not None]
    names = [s["name"] for s in done]
    if len(set(names)) != len(names):
        raise ValueError(f"profiles must have distinct names, got {', '.join(names)}")
    out = cfg.out
    paper = quoted(dataset)
    bits_quoted = paper_numbers()["table_VIII"]["datasets"].get(dataset) if dataset else None
    combined = {
        "name": "compare",
        "description": f"{', '.join(names)} on {cfg.data} ({cfg.protocol})",
        "dataset": dataset,
        "results": [{k: s[k] for k in ("name", "description", "results", "unavailable")} for s in done],
        "quoted": {"paper": paper_numbers()["source"], "points": paper, "bit_allocation": bits_quoted},
    }
    write_atomic(out / "compare.json", (json.dumps(combined, indent=2) + "\n").encode())
    write_csv(out / "results.csv", done)
    plots = plot_rd(out / "plots", done, paper)
    bits = plot_bits(out / "plots" / "bit-allocation.png", done, bits_quoted)
    data = {p.name: p for p in list_images(cfg.data)}
    report = write_html(out, done, lambda name: prepare(data[name], cfg.protocol, cfg.max_pixels).image, plots, bits, crop)
    return {"json": out / "compare.json", "csv": out / "results.csv", "report": report, **{f"plot:{k}": p for k, p in plots.items()}}
