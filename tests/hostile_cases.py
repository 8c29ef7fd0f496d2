"""The hostile format-2 files of issue 21, rebuilt from real encodes of a Kodak image.

Used by ``tests/test_hostile_files.py`` (each decoded by the CLI in a fresh process under time
and memory limits) and ``benchmarks/hostile_files.py`` (the same at the issue's sizes, timed).
Every file has a valid CRC: only the header and sections are hostile.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from sedic_kit import Codec
from sedic_kit.container import Reader, SedicFile, unpack
from sedic_kit.testing.crafted import reference_claiming, swap, varint, write_v2
from sedic_kit.plugin_ids import BUILTIN_IDS
from sedic_kit.roles import DECODER_ROLES, Role

ROOT = Path(__file__).resolve().parent.parent
KODIM23 = ROOT / "examples" / "images" / "kodim23.png"
NEEDS_COMPRESSAI = ("compressai-empty", "compressai-header", "compressai-shape", "compressai-on-avif")


def encode(workdir: Path, side: int, *overrides: str) -> SedicFile:
    """kodim23 (with its sidecar semantics: 3 objects) at ``side`` pixels wide, coded by ``lite`` with ``overrides``."""
    image = Image.open(KODIM23).convert("RGB")
    small = image.resize((side, round(side * image.height / image.width)), Image.Resampling.LANCZOS)
    path = workdir / f"{side}-{'-'.join(overrides)}" / KODIM23.name  # the sidecar names the image
    path.parent.mkdir(parents=True, exist_ok=True)
    small.save(path)
    path.with_suffix(".json").write_text(KODIM23.with_suffix(".json").read_text())
    return unpack(Codec.from_profile("lite", overrides=list(overrides)).encode(path).data)


def resized(f: SedicFile, width: int, height: int, **changes: bytes) -> SedicFile:
    return SedicFile(width, height, f.plugins, changes.get("reference", f.reference), f.text, changes.get("masks", f.masks), f.extras)


def compressai_strings(f: SedicFile) -> tuple[bytes, bytes]:
    r = Reader(f.reference)
    y = r.take(r.varint("y length"), "y")
    return y, f.reference[r.pos :]


def named_config(f: SedicFile, role: Role, name: str, version: int, keys: dict[str, bytes]) -> bytes:
    """``f``'s decoder config with ``role`` written by (hostile) name, parameter keys as given."""
    out = bytearray()
    for r in DECODER_ROLES:
        if r is not role:
            number = next(n for n, e in BUILTIN_IDS[r].items() if (e.name, e.version) == (f.plugins[r].name, f.plugins[r].version))
            out += varint(number << 1)
            continue
        out += varint(int(bool(keys))) + varint(len(name.encode())) + name.encode() + varint(version)
        if keys:
            out += varint(len(keys))
            for key, value in keys.items():
                out += varint(len(key.encode())) + key.encode() + value
    return bytes(out)


def build(workdir: Path, big: bool = False) -> dict[str, bytes]:
    """Every class of the issue's table, by name. ``big``: the issue's own sizes (the cheng2020
    case from a 768x512 encode); else small encodes that hit the same checks (tests)."""
    cases: dict[str, Callable[[], bytes]] = {}
    lite = encode(workdir, 192)
    heic = encode(workdir, 64, "reference_codec.plugin=heic")
    webp = encode(workdir, 192, "reference_codec.plugin=webp")
    jpeg = encode(workdir, 192, "reference_codec.plugin=jpeg", "mask_coder.plugin=png")
    huge = 10000
    cases["heic-10000"] = lambda: write_v2(resized(heic, huge, huge, reference=reference_claiming(heic, (huge, huge))))
    cases["cabac-scale1-10000"] = lambda: write_v2(
        swap(resized(lite, huge, huge, reference=reference_claiming(lite, (huge // 2, huge // 2)), masks=bytes(9000)), Role.mask_coder, "cabac", {"scale": 1})
    )
    side = 4096  # within the header's budget: the cost of the masks is what is refused
    cases["cabac-scale1-4096"] = lambda: write_v2(swap(resized(lite, side, side * 2 // 3, masks=bytes(9000)), Role.mask_coder, "cabac", {"scale": 1}))
    cases["webp-10000"] = lambda: write_v2(resized(webp, huge, huge, reference=reference_claiming(webp, (huge, huge))))
    cases["jpeg-10000"] = lambda: write_v2(resized(jpeg, huge, huge, reference=reference_claiming(jpeg, (huge, huge))))
    cases["name-newline"] = lambda: write_v2(lite, plugins=named_config(lite, Role.restorer, "up\nsample\x1b[31m", 1, {}))
    cases["key-newline"] = lambda: write_v2(
        lite, plugins=named_config(lite, Role.restorer, "upsample", 1, {"filter\nx\x1b[2J": b"\x07" + varint(3) + b"abc"})
    )
    cases["compressai-on-avif"] = lambda: write_v2(swap(lite, Role.reference_codec, "bmshj2018-hyperprior", {"pretrained": False}))
    cases["compressai-empty"] = lambda: write_v2(
        swap(resized(lite, lite.width, lite.height, reference=varint(0)), Role.reference_codec, "bmshj2018-hyperprior", {"pretrained": False})
    )

    def compressai(arch: str, width: int) -> SedicFile:
        return encode(workdir, width, f"reference_codec.plugin={arch}", "reference_codec.pretrained=false")

    def under(f: SedicFile, width: int, height: int) -> bytes:
        return write_v2(resized(f, width, height))

    cases["compressai-header"] = lambda: under(compressai("bmshj2018-hyperprior", 192), 4000, 4000)
    if big:
        cases["compressai-shape"] = lambda: under(compressai("cheng2020-attn", 768), 1000, 1000)
    else:  # within the budget: the hyper-latent check refuses it
        cases["compressai-shape"] = lambda: under(compressai("cheng2020-attn", 128), 320, 256)
    return {name: make() for name, make in cases.items()}
