"""`lite` encode/decode time per image and per megapixel, this checkout against a previous one.

Each run is one process that encodes and decodes every image with the ``lite`` profile (sidecar
descriptions from ``--semantics``; boxes are rescaled for upscaled images). Runs alternate
between the versions (A B B A A B ...), so both see the same machine load; the first image of a
run also pays the process's one-time costs (imports, compiled-code cache) and is reported apart.

    git worktree add ../sedic-base main       # the previous version
    python benchmarks/lite_speed.py --baseline ../sedic-base --upscale 1,2 --repeats 2

Prints, per version and image size: min / median / max over runs of the mean seconds per image
(wall and CPU) for encode and decode, seconds per megapixel, and the ratio previous / this.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / ".." / "shared" / "data"


def worker(images: list[Path], semantics: Path) -> None:
    """Encode + decode each image in this process; one JSON line per image on stdout."""
    from sedic_kit import Codec

    codec = Codec.from_profile("lite", overrides=[f"describer.path={semantics}"])
    for path in images:
        w0, c0 = time.perf_counter(), time.process_time()
        result = codec.encode(path)
        w1, c1 = time.perf_counter(), time.process_time()
        codec.decode(result.data)
        w2, c2 = time.perf_counter(), time.process_time()
        row = {"image": path.name, "pixels": result.payload.pixels, "bits": result.bits,
               "encode": w1 - w0, "encode_cpu": c1 - c0, "decode": w2 - w1, "decode_cpu": c2 - c1}
        print(json.dumps(row), flush=True)


def prepare(images: list[Path], factor: int, out: Path) -> list[Path]:
    """The images upscaled by ``factor`` (Lanczos) as PNG under ``out`` (same names)."""
    if factor == 1:
        return images
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in images:
        dst = out / src.name
        if not dst.exists():
            with Image.open(src) as im:
                im.convert("RGB").resize((im.width * factor, im.height * factor), Image.Resampling.LANCZOS).save(dst)
        paths.append(dst)
    return paths


def run(version: str, checkout: Path | None, images: list[Path], semantics: Path) -> list[dict]:  # type: ignore[type-arg]
    """One worker process for ``version`` (``checkout`` None: this checkout)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--semantics", str(semantics), *map(str, images)]
    if checkout is not None:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "previous.py"), str(checkout), *cmd[1:]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode:
        raise SystemExit(f"lite_speed: {version} run failed:\n{done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="checkout of the previous version (see benchmarks/previous.py)")
    ap.add_argument("--data", type=Path, default=SHARED / "kodak")
    ap.add_argument("--semantics", type=Path, default=SHARED / "kodak-semantics")
    ap.add_argument("--images", type=int, default=24, help="first N images of --data")
    ap.add_argument("--upscale", default="1", help="comma-separated integer factors (2: 1536x1024 Kodak)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per version (alternating A B B A ...)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.paths, args.semantics)
        return
    images = sorted(args.data.glob("*.png"))[: args.images]
    if not images:
        raise SystemExit(f"lite_speed: no PNG images in {args.data}")
    versions: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline:
        versions.insert(0, ("previous", args.baseline))
    tmp = Path(tempfile.mkdtemp(prefix="lite-speed-"))
    for factor in (int(f) for f in args.upscale.split(",")):
        paths = prepare(images, factor, tmp / f"x{factor}")
        runs: dict[str, list[list[dict]]] = {name: [] for name, _ in versions}  # type: ignore[type-arg]
        for i in range(args.repeats):
            order = versions if i % 2 == 0 else versions[::-1]
            for name, checkout in order:
                runs[name].append(run(name, checkout, paths, args.semantics))
        w, h = Image.open(paths[0]).size
        print(f"\n{len(paths)} images at {w}x{h} (x{factor}), {args.repeats} runs per version; "
              "seconds per image: min / median / max over runs of the run's mean (first image apart)\n")
        print("| version | encode s | encode CPU s | decode s | decode CPU s | encode s/MP | first image encode s | bits |")
        print("| --- | --- | --- | --- | --- | --- | --- | ---: |")
        means: dict[str, dict[str, list[float]]] = {}
        for name, _ in versions:
            m = means[name] = {k: [] for k in ("encode", "encode_cpu", "decode", "decode_cpu", "per_mp", "first")}
            for rows in runs[name]:
                steady = rows[1:] or rows
                for key in ("encode", "encode_cpu", "decode", "decode_cpu"):
                    m[key].append(statistics.mean(r[key] for r in steady))
                m["per_mp"].append(statistics.mean(r["encode"] / (r["pixels"] / 1e6) for r in steady))
                m["first"].append(rows[0]["encode"])
            bits = statistics.mean(sum(r["bits"].values()) for r in runs[name][0])
            print(f"| {name} | {spread(m['encode'])} | {spread(m['encode_cpu'])} | {spread(m['decode'])} | "
                  f"{spread(m['decode_cpu'])} | {spread(m['per_mp'])} | {spread(m['first'])} | {bits:.0f} |")
        if len(versions) == 2:
            a, b = means["previous"], means["this"]
            ratios = {k: [x / y for x, y in zip(a[k], b[k])] for k in ("encode", "encode_cpu", "decode", "decode_cpu")}
            print(f"| previous / this | {spread(ratios['encode'])} | {spread(ratios['encode_cpu'])} | "
                  f"{spread(ratios['decode'])} | {spread(ratios['decode_cpu'])} | | | |")


if __name__ == "__main__":
    main()
