"""Header cost on Kodak: framing and config bits of format 2, and the stripped-container check.

Codes every image with the ``lite`` profile (its Kodak description as sidecar; ``box`` masks,
since mask shapes do not change the header) and reports the mean framing and config bpp. For
the container-stripped codecs (``avif``, ``heic`` at the lite setting) it also reports what
detecting a decoder-library mismatch costs: the 2-byte check value carried in the section,
against the parameter-set boxes (``av1C``, ``hvcC``) that carrying them instead would take.

Usage: ``python benchmarks/header_cost.py [--data ../shared/data/kodak] [--semantics ../shared/data/kodak-semantics]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from sedic_kit import Codec
from sedic_plugins.reference_codecs import isobmff
from sedic_plugins.reference_codecs.pillow import AvifCodec, ContainerStrippedCodec, HeicCodec
from sedic_plugins.reference_codecs.scaling import downscale

ROOT = Path(__file__).resolve().parent.parent


def parameter_sets(codec: ContainerStrippedCodec, image: Image.Image) -> int:
    """Bytes of the decoder configuration box (``av1C``/``hvcC``) in the encoder's file."""
    data = codec.write(downscale(image, codec.options.scale, codec.options.filter))
    meta = isobmff.find(isobmff.boxes(data), b"meta")
    iprp = isobmff.find(isobmff.boxes(data, meta.body + 4, meta.end), b"iprp")
    ipco = isobmff.find(isobmff.boxes(data, iprp.body, iprp.end), b"ipco")
    box = next(b for b in isobmff.boxes(data, ipco.body, ipco.end) if b.type in (b"av1C", b"hvcC"))
    return box.end - box.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    parser.add_argument("--semantics", type=Path, default=ROOT.parent / "shared" / "data" / "kodak-semantics")
    args = parser.parse_args()
    codec = Codec.from_profile("lite", overrides=[f"describer.path={args.semantics}", "segmenter.plugin=box"])
    stripped = [AvifCodec(scale=2.0, quality=0), HeicCodec(scale=2.0, quality=0)]
    rows: list[tuple[float, float, int, int]] = []
    sets: dict[str, list[int]] = {c.name: [] for c in stripped}
    for path in sorted(args.data.glob("*.png")):
        result = codec.encode(path)
        rows.append((result.bits["framing"] / result.payload.pixels, result.bits["config"] / result.payload.pixels,
                     result.bits["framing"] // 8, result.bits["config"] // 8))
        image = Image.open(path).convert("RGB")
        for c in stripped:
            sets[c.name].append(parameter_sets(c, image))
    framing, config, fbytes, cbytes = (np.mean([r[i] for r in rows]) for i in range(4))
    print(f"images: {len(rows)}")
    print(f"| framing | {framing:.6f} bpp | {fbytes:.2f} bytes |")
    print(f"| config | {config:.6f} bpp | {cbytes:.2f} bytes |")
    pixels = 768 * 512
    for name, sizes in sets.items():
        print(f"| {name} check value | {16 / pixels:.6f} bpp | 2 bytes | parameter sets instead: {np.mean(sizes):.1f} bytes "
              f"({8 * np.mean(sizes) / pixels:.6f} bpp) |")


if __name__ == "__main__":
    main()
