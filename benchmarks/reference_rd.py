"""Rate-distortion and speed of the reference codecs on Kodak (0.008-0.05 bpp).

bpp is the size of the real ``.sedic`` file (reference section plus header, empty caption, no
objects) over the full-resolution pixels; ``ref bpp`` is the reference section alone; the
plain-Pillow baseline is a standalone ``.avif`` file. PSNR and MS-SSIM are measured after the
``upsample`` restorer brings the reference to full size. Modes:

    python benchmarks/reference_rd.py                      # classical codecs, table + plot
    python benchmarks/reference_rd.py --target-bpp 0.03    # rate control on every image (lite + semantics)
    python benchmarks/reference_rd.py --compressai-speed   # CompressAI timings with random weights
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sedic_kit import Codec
from sedic_kit.imaging import psnr
from sedic_kit.payload import SourceImage

REPO = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "avif": [{"scale": s, "quality": q} for s, q in [(4, 0), (4, 16), (3, 0), (3, 8), (2.5, 0), (2.5, 8), (2, 0), (2, 8), (1.5, 0)]],
    "heic": [{"scale": s, "quality": q} for s, q in [(4, 0), (3, 0), (3, 20), (2, 0), (2, 20)]],
    "webp": [{"scale": s, "quality": q} for s, q in [(4, 0), (3, 0), (2, 0), (2, 20)]],
    "jpeg": [{"scale": s, "quality": q} for s, q in [(6, 1), (4, 1), (3, 1)]],
}
BASELINE = [(3.0, 0), (2.0, 0)]
"""Plain Pillow AVIF (default speed, full container) at these (scale, quality)."""
COMPRESSAI = ["bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn"]


def ms_ssim(a: Image.Image, b: Image.Image) -> float:
    import torch
    from pytorch_msssim import ms_ssim as msssim

    def t(im: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1)[None]

    return float(msssim(t(a), t(b), data_range=255.0))


def measure(codec: Codec, source: Image.Image | SourceImage, target_bpp: float | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    result = codec.encode(source, target_bpp)
    image = source.image if isinstance(source, SourceImage) else source
    enc = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(result.data)
    dec = time.perf_counter() - start
    return {
        "bpp": result.bpp,
        "ref_bpp": result.bits["reference"] / result.payload.pixels,
        "psnr": psnr(decoded, image),
        "ms_ssim": ms_ssim(decoded, image),
        "enc_s": enc,
        "dec_s": dec,
        "notes": result.notes,
    }


def plain_avif(image: Image.Image, scale: float, quality: int) -> dict[str, Any]:
    start = time.perf_counter()
    small = image.resize((round(image.width / scale), round(image.height / scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "AVIF", quality=quality)
    enc = time.perf_counter() - start
    start = time.perf_counter()
    rec = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").resize(image.size, Image.Resampling.LANCZOS)
    dec = time.perf_counter() - start
    bpp = 8 * len(buf.getvalue()) / (image.width * image.height)
    return {"bpp": bpp, "ref_bpp": bpp, "psnr": psnr(rec, image), "ms_ssim": ms_ssim(rec, image), "enc_s": enc, "dec_s": dec}


def mean_row(name: str, setting: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("bpp", "ref_bpp", "psnr", "ms_ssim", "enc_s", "dec_s")
    return {"codec": name, "setting": setting, "images": len(rows), **{k: statistics.fmean(r[k] for r in rows) for k in keys}}


def reference_only(plugin: str, options: dict[str, Any]) -> Codec:
    """The lite profile with no description: the file is the reference plus the header."""
    return Codec.from_profile("lite", overrides=["describer.plugin=none", f"reference_codec.plugin={plugin}"], reference_codec=options)


def rd(images: list[tuple[str, Image.Image]], out: Path) -> list[dict[str, Any]]:
    table = []
    for scale, quality in BASELINE:
        table.append(mean_row("avif (plain Pillow)", f"scale {scale:g} q{quality}", [plain_avif(im, scale, quality) for _, im in images]))
        print(table[-1], flush=True)
    for name, settings in SETTINGS.items():
        for options in settings:
            codec = reference_only(name, options)
            table.append(mean_row(name, f"scale {options['scale']:g} q{options['quality']}", [measure(codec, im) for _, im in images]))
            print(table[-1], flush=True)
    (out / "reference_rd.json").write_text(json.dumps(table, indent=1))
    plot(table, out / "reference_rd.png")
    return table


def plot(table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["codec"] for r in table):
        rows = sorted((r for r in table if r["codec"] == name and r["bpp"] <= 0.05), key=lambda r: r["bpp"])
        ax.plot([r["bpp"] for r in rows], [r["psnr"] for r in rows], "o-" if "plain" not in name else "x--", label=name)
    ax.set_xlabel("bpp (whole file, Kodak)")
    ax.set_ylabel("PSNR (dB) after upsampling")
    ax.set_xlim(0.0, 0.052)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def target(images: list[tuple[str, Image.Image]], bpp: float, semantics: Path, paths: list[Path]) -> list[dict[str, Any]]:
    codec = Codec.from_profile("lite", overrides=[f"describer.path={semantics}"])
    rows = []
    for (name, image), path in zip(images, paths):
        row = {"image": name, **measure(codec, codec.load(path), bpp)}
        row["in_window"] = 0.9 * bpp <= row["bpp"] <= bpp
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def compressai_speed(images: list[tuple[str, Image.Image]], downscale: float) -> list[dict[str, Any]]:
    rows = []
    for arch in COMPRESSAI:
        codec = reference_only(arch, {"pretrained": False, "downscale": downscale, "threads": 1})
        codec.reference_codec.model()  # load outside the timing
        rows.append(mean_row(arch, f"random weights, downscale {downscale:g}", [measure(codec, im) for _, im in images]))
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "kodak")
    ap.add_argument("--semantics", type=Path, default=REPO.parent / "shared" / "data" / "kodak-semantics")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks")
    ap.add_argument("--images", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--target-bpp", type=float)
    ap.add_argument("--compressai-speed", action="store_true")
    ap.add_argument("--downscale", type=float, default=2.0)
    args = ap.parse_args()
    paths = sorted(args.data.glob("*.png"))[: args.images or None]
    images = [(p.name, Image.open(p).convert("RGB")) for p in paths]
    if args.compressai_speed:
        rows = compressai_speed(images, args.downscale)
    elif args.target_bpp is not None:
        rows = target(images, args.target_bpp, args.semantics, paths)
        print(f"{sum(r['in_window'] for r in rows)}/{len(rows)} images in [{0.9 * args.target_bpp:g}, {args.target_bpp:g}] bpp")
    else:
        rows = rd(images, args.out)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
