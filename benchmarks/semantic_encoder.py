"""Semantic encoder benchmark: describe -> ground -> segment on a folder of images.

Reports, per profile, objects described and kept by the grounder (the rest were dropped as
hallucinations), stage timings, and the text and mask bits the payload costs.

    python benchmarks/semantic_encoder.py --profile tiny --set describer.plugin=sidecar \
        --set describer.path=../shared/data/kodak-semantics --data ../shared/data/kodak
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from sedic_kit import Codec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="ROLE.KEY=VALUE")
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak")
    parser.add_argument("--limit", type=int, default=0, help="first N images only")
    parser.add_argument("--json", type=Path, help="write per-image records here")
    args = parser.parse_args()

    codec = Codec.from_profile(args.profile, overrides=args.overrides)
    images = sorted(args.data.glob("*.png"))[: args.limit or None]
    if not images:
        raise SystemExit(f"no PNG images in {args.data}")
    records = []
    for path in images:
        source = codec.load(path)
        timings: dict[str, float] = {}
        described = codec.describer.describe(source)
        start = time.perf_counter()
        grounded = codec.grounder.ground(source, described)
        timings["ground"] = time.perf_counter() - start
        start = time.perf_counter()
        payload = codec.segmenter.segment(source, grounded)
        timings["segment"] = time.perf_counter() - start
        w, h = source.size
        text_bits = 8 * len(codec.text_coder.encode(payload.texts()))
        mask_bits = 8 * len(codec.mask_coder.encode([o.mask for o in payload.objects], w, h))
        records.append(
            {
                "image": path.name,
                "described": len(described.objects),
                "kept": len(payload.objects),
                "text_bpp": text_bits / (w * h),
                "mask_bpp": mask_bits / (w * h),
                **{f"{k}_s": v for k, v in timings.items()},
            }
        )
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
    mean = lambda key: statistics.fmean(r[key] for r in records)
    print("| profile | images | objects described | kept after grounding | text bpp | mask bpp | ground s | segment s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.profile} {' '.join(args.overrides)} | {len(records)} | {sum(r['described'] for r in records)} | "
        f"{sum(r['kept'] for r in records)} | {mean('text_bpp'):.5f} | {mean('mask_bpp'):.5f} | "
        f"{mean('ground_s'):.3f} | {mean('segment_s'):.3f} |"
    )


if __name__ == "__main__":
    main()
