"""GrabCut at several resolutions on the Kodak fixture boxes: time, `cabac` mask bits, grid IoU against the first.

    python benchmarks/grabcut_scale.py --scales 1,2,4 --images 24
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sedic_kit.imaging import load_image
from sedic_kit.masks import to_grid
from sedic_kit.payload import Payload, SemanticObject
from sedic_kit.plugins import get_registry
from sedic_kit.roles import Role
from sedic_plugins.describers.sidecar import description_files

SHARED = Path(__file__).resolve().parent.parent / ".." / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "kodak")
    ap.add_argument("--semantics", type=Path, default=SHARED / "kodak-semantics")
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--images", type=int, default=24)
    args = ap.parse_args()
    reg = get_registry()
    segmenter = reg.get(Role.segmenter, "grabcut")
    cabac = reg.get(Role.mask_coder, "cabac")(scale=8)
    avif = reg.get(Role.reference_codec, "avif")(scale=2.0, quality=0, speed=6)
    entries = [d for f in description_files(args.semantics) for d in json.loads(f.read_text())][: args.images]
    if not entries:
        raise SystemExit(f"grabcut_scale: no descriptions*.json entries in {args.semantics}")
    scales = [int(s) for s in args.scales.split(",")]
    seconds, bits, ious = dict.fromkeys(scales, 0.0), dict.fromkeys(scales, 0), {s: [] for s in scales}  # type: ignore[var-annotated]
    for d in entries:
        source = load_image(args.data / d["image"])
        w, h = source.size
        payload = Payload(w, h, d["caption"], [SemanticObject(o["name"], o["details"], box=tuple(o["box"])) for o in d["objects"]])
        reference = avif.decode(avif.encode(source.image), w, h)
        grids = {}
        for s in scales:
            start = time.perf_counter()
            masks = [o.mask for o in segmenter(scale=s).segment(source, payload).objects]
            seconds[s] += time.perf_counter() - start
            bits[s] += 8 * len(cabac.encode(masks, w, h, reference=reference))
            grids[s] = [to_grid(m, w, h, 8) for m in masks]
        for s in scales:
            ious[s] += [(a & b).sum() / max(1, (a | b).sum()) for a, b in zip(grids[s], grids[scales[0]])]
    n = len(entries)
    print(f"| GrabCut at 1/scale | s / image | cabac mask bits | grid IoU vs 1/{scales[0]} (mean / min) |\n| --- | ---: | ---: | --- |")
    for s in scales:
        print(f"| 1/{s} | {seconds[s] / n:.3f} | {bits[s] / n:.0f} | {np.mean(ious[s]):.2f} / {np.min(ious[s]):.2f} |")


if __name__ == "__main__":
    main()
