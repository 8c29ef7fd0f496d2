"""Cost of ``--target-bpp`` against a single encode, interleaved per image (timings on a shared machine are noisy).

    python benchmarks/rate_speed.py [--data ../shared/data/kodak] [--semantics ../shared/data/kodak-semantics]
        [--images 6] [--targets 0.02,0.03,0.045] [--exhaustive]

Per image, in this order: one plain ``lite`` encode (the profile's own AVIF setting), then one
encode per target (fast probes, then the profile's setting), and with ``--exhaustive`` the same
targets with every ladder probe coded at the profile's setting (the search before fast probes).
Prints a Markdown table: seconds, ratio to the plain encode, achieved bpp.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sedic_kit import Codec
from sedic_kit.eval.datasets import list_images, prepare

ROOT = Path(__file__).resolve().parents[1]


def timed(codec: Codec, path: Path, target: float | None) -> tuple[float, float]:
    source = prepare(path, "as-is", 10**8)
    start = time.perf_counter()
    result = codec.encode(source, target)
    return time.perf_counter() - start, result.bpp


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak")
    ap.add_argument("--semantics", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak-semantics")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--targets", default="0.02,0.03,0.045")
    ap.add_argument("--exhaustive", action="store_true", help="also time the search without fast probes")
    args = ap.parse_args(argv)
    targets = [float(t) for t in args.targets.split(",")]
    codec = Codec.from_profile("lite", overrides=[f"describer.path={args.semantics}"])
    variants: list[tuple[str, float | None, bool]] = [("single encode", None, False)]
    variants += [(f"target {t:g}", t, False) for t in targets]
    if args.exhaustive:
        variants += [(f"target {t:g}, no fast probes", t, True) for t in targets]
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in variants}
    reference = type(codec.reference_codec)
    fast = reference.search_options
    for path in list_images(args.data)[: args.images]:
        for name, target, exhaustive in variants:
            reference.search_options = (lambda self: {}) if exhaustive else fast  # type: ignore[method-assign]
            rows[name].append(timed(codec, path, target))
        reference.search_options = fast  # type: ignore[method-assign]
        print(path.name, {k: round(v[-1][0], 2) for k, v in rows.items()}, file=sys.stderr)
    base = [t for t, _ in rows["single encode"]]
    print("| variant | mean s | ratio to single (mean of per-image ratios) | worst ratio | mean bpp |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, values in rows.items():
        ratios = [t / b for (t, _), b in zip(values, base)]
        print(
            f"| {name} | {statistics.mean(t for t, _ in values):.2f} | {statistics.mean(ratios):.2f} | "
            f"{max(ratios):.2f} | {statistics.mean(b for _, b in values):.5f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run())
