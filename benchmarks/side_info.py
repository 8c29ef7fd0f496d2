"""Side-information benchmark: text and mask coders on the Kodak semantics fixture.

For every registered text coder and mask coder: mean bits and bpp (over the full image's
pixels) across the 24 images, mean encode/decode time, and a lossless check. Mask coders that
condition on the reference get the decoded ``lite`` reference (``avif`` at scale 2, quality 0,
coded and decoded from the Kodak image in ``--images``).

Usage: ``python benchmarks/side_info.py [--data ../shared/data/kodak-semantics] [--images ../shared/data/kodak] [--scale 8]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sedic_kit.masks import to_grid
from sedic_kit.payload import Payload, SemanticObject
from sedic_kit.plugins import get_registry
from sedic_kit.roles import Role
from sedic_plugins.describers.sidecar import DESCRIPTIONS, description_files

ROOT = Path(__file__).resolve().parent.parent


def load(data: Path, images: Path) -> list[tuple[Payload, list[np.ndarray], Image.Image]]:
    """Payload, full-size masks and decoded lite reference of every fixture image.

    Descriptions are read from the files the ``sidecar`` describer reads beside an image
    (``descriptions*.json``), entries with an ``"image"`` name; masks from ``masks/``.
    """
    reference_codec = get_registry().get(Role.reference_codec, "avif")(scale=2.0, quality=0)
    entries = [d for part in description_files(data) for d in _entries(part)]
    if not entries:
        raise SystemExit(f"side_info: no {DESCRIPTIONS} file with image entries in {data}")
    items = []
    for d in entries:
        stem = Path(d["image"]).stem
        objects = [SemanticObject(o["name"], o["details"]) for o in d["objects"]]
        mask_files = [data / "masks" / f"{stem}_obj{k}.png" for k in range(len(objects))]
        missing = [str(f) for f in mask_files if not f.is_file()]
        if missing or not (images / f"{stem}.png").is_file():
            raise SystemExit(f"side_info: {d['image']}: missing {', '.join(missing) or images / f'{stem}.png'}")
        masks = [np.asarray(Image.open(f)) > 0 for f in mask_files]
        with Image.open(images / f"{stem}.png") as image:
            section = reference_codec.encode(image.convert("RGB"))
        reference = reference_codec.decode(section, d["width"], d["height"])
        items.append((Payload(d["width"], d["height"], d["caption"], objects), masks, reference))
    return items


def _entries(path: Path) -> list[dict]:  # type: ignore[type-arg]
    """The entries of a descriptions list that name their image."""
    data = json.loads(path.read_text())
    return [d for d in (data if isinstance(data, list) else [data]) if isinstance(d, dict) and "image" in d]


def measure(items, encode, decode, check) -> tuple[float, float, float, float]:  # type: ignore[no-untyped-def]
    bits = bpp = enc = dec = 0.0
    payload, masks, reference = items[0]
    decode(encode(payload, masks, reference), payload, masks, reference)  # warm-up: caches, compiled code
    for payload, masks, reference in items:
        t = time.perf_counter()
        data = encode(payload, masks, reference)
        enc += time.perf_counter() - t
        t = time.perf_counter()
        out = decode(data, payload, masks, reference)
        dec += time.perf_counter() - t
        if not check(out, payload, masks):
            raise SystemExit("round trip failed")
        bits += 8 * len(data)
        bpp += 8 * len(data) / payload.pixels
    n = len(items)
    return bits / n, bpp / n, 1000 * enc / n, 1000 * dec / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak-semantics")
    parser.add_argument("--images", type=Path, default=ROOT / ".." / "shared" / "data" / "kodak")
    parser.add_argument("--scale", type=int, default=8, help="mask grid scale (8: latent resolution)")
    args = parser.parse_args()
    items = load(args.data, args.images)
    registry = get_registry()
    print(f"{len(items)} images; bits and bpp are means per image\n")
    print("| section | coder | bits | bpp | encode ms | decode ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in registry.names(Role.text_coder):
        coder = registry.get(Role.text_coder, name)()
        row = measure(
            items,
            lambda p, m, r: coder.encode(p.texts()),
            lambda d, p, m, r: coder.decode(d),
            lambda out, p, m: out == p.texts(),
        )
        print(f"| text | {name} | {row[0]:.0f} | {row[1]:.5f} | {row[2]:.1f} | {row[3]:.1f} |")
    for name in registry.names(Role.mask_coder):
        cls = registry.get(Role.mask_coder, name)
        coder = cls(scale=args.scale) if "scale" in cls.Options.model_fields else cls()
        s = getattr(coder.options, "scale", 1)
        row = measure(
            items,
            lambda p, m, r: coder.encode(m, p.width, p.height, reference=r),
            lambda d, p, m, r: coder.decode(d, len(m), p.width, p.height, reference=r),
            lambda out, p, m: all(np.array_equal(o, to_grid(x, p.width, p.height, s)) for o, x in zip(out, m)),
        )
        print(f"| masks (1/{s}) | {name} | {row[0]:.0f} | {row[1]:.5f} | {row[2]:.1f} | {row[3]:.1f} |")


if __name__ == "__main__":
    main()
