"""Compare profiles on Kodak with ``sedic-kit compare`` and print the mean table as Markdown.

    python benchmarks/eval_kodak.py [--data ../shared/data/kodak] [--semantics ../shared/data/kodak-semantics]
        [--profiles lite,lite-webp] [--out bench-out/eval-kodak]

Resumable: rerunning with the same ``--out`` only evaluates images not finished yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sedic_kit.cli import main

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("bpp", "bpp-reference", "bpp-text", "bpp-masks", "bpp-config", "bpp-framing", "psnr-rgb", "ms-ssim-rgb")


def table(compare_json: Path) -> str:
    data = json.loads(compare_json.read_text())
    lines = ["| profile | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for r in data["results"]:
        cells = [r["results"].get(c, [None])[0] for c in COLUMNS]
        lines.append(f"| {r['name']} | " + " | ".join("n/a" if v is None else f"{v:.4f}" for v in cells) + " |")
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak")
    parser.add_argument("--semantics", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak-semantics")
    parser.add_argument("--profiles", default="lite,lite-webp")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "eval-kodak")
    args = parser.parse_args(argv)
    first = args.profiles.split(",")[0]
    rc = main(["compare", "--profiles", args.profiles, "--data", str(args.data), "--out", str(args.out),
               "--set", f"{first}:describer.path={args.semantics}"])
    if rc == 0:
        print(table(args.out / "compare.json"))
    return rc


if __name__ == "__main__":
    sys.exit(run())
