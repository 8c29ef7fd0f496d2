"""Golden ``.sedic`` files: one per built-in decoder plugin version, with what they decode to.

Each case codes the same small image and description with the ``lite`` profile and one plugin
swapped in. ``tests/data/golden/`` holds the files, named by the case and the four decoder
plugins and versions they were written with, and ``expected.json`` their decoded texts, mask
hashes and pixel hashes. Files are never rewritten: after a plugin's ``version`` bump, run
``python tests/golden_cases.py`` to add files for the new versions beside the old ones (which
must then fail to decode with an error naming the version).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import REPO, synthetic_image  # noqa: E402
from sedic_kit import Codec, hookimpl, load_profile  # noqa: E402
from sedic_kit.codec import DecodeResult  # noqa: E402
from sedic_kit.plugins import Registry  # noqa: E402
from sedic_kit.profiles import apply_override  # noqa: E402
from sedic_kit.roles import DECODER_ROLES, Role  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
EXPECTED = GOLDEN / "expected.json"
DESCRIPTION = {
    "caption": "A yellow disc over a smooth colour gradient, flat light, and a dark square in the corner.",
    "objects": [
        {"name": "yellow disc", "details": "Bright round yellow disc with soft edges.", "box": [24, 8, 54, 38]},
        {"name": "gradient", "details": "Smooth red to green ramp.", "box": [0, 20, 40, 48]},
    ],
}
SIZE = (64, 48)
PINNED = [
    "segmenter.plugin=golden-ellipse",
    "reference_codec.plugin=avif", "reference_codec.scale=2.0", "reference_codec.quality=0", "reference_codec.speed=0",
    "text_coder.plugin=lm", "mask_coder.plugin=cabac", "mask_coder.scale=8", "restorer.plugin=upsample",
]  # fmt: skip
"""The lite profile's decoder plugins and settings as the golden files were written (lite may move on)."""


@dataclass(frozen=True)
class Case:
    """A golden file: ``plugin`` at ``version`` in ``role`` of the lite profile, with ``options``."""

    role: Role
    plugin: str
    version: int
    options: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        extra = "".join(f"-{k}={v}" for k, v in self.options)
        return f"{self.role.value}-{self.plugin}-v{self.version}{extra}"

    @property
    def overrides(self) -> list[str]:
        return [f"{self.role.value}.plugin={self.plugin}", *(f"{self.role.value}.{k}={json.dumps(v)}" for k, v in self.options)]


CASES = [
    Case(Role.reference_codec, "avif", 3),
    Case(Role.reference_codec, "heic", 3),
    Case(Role.reference_codec, "webp", 2),
    Case(Role.reference_codec, "jpeg", 1),
    *(Case(Role.reference_codec, arch, 1, (("pretrained", False),))
      for arch in ("cheng2020-attn", "cheng2020-anchor", "mbt2018", "mbt2018-mean", "bmshj2018-hyperprior")),
    *(Case(Role.text_coder, name, 1) for name in ("lm", "huffman", "brotli", "zlib", "utf8")),
    Case(Role.mask_coder, "cabac", 2),
    Case(Role.mask_coder, "cabac", 2, (("scale", 2),)),
    Case(Role.mask_coder, "cabac", 3),
    Case(Role.mask_coder, "cabac", 3, (("scale", 2),)),
    *(Case(Role.mask_coder, name, 1) for name in ("golomb", "jbig1", "png", "raw")),
    Case(Role.restorer, "upsample", 1),
    Case(Role.restorer, "upsample", 1, (("filter", "bicubic"),)),
]  # fmt: skip
GOLDEN_AVIF_SPEED = 0
"""The AVIF encoder speed of every golden file."""
FORMAT_V1 = "format-v1~"
"""Prefix of files written by sedic-kit 0.1 (format 1)."""
NOT_GOLDEN = {(Role.restorer, "orag"): "diffusion output depends on the device and library build"}
"""Built-in decoder plugins without golden files, and why."""


sys.path.insert(0, str(REPO / "examples" / "sedic-role-examples"))
try:
    from sedic_role_examples.ellipse_segmenter import EllipseSegmenter as _Ellipse
finally:
    sys.path.pop(0)


class EllipseSegmenter(_Ellipse):
    """The role example's ellipse inscribed in each object's box: a deterministic mask for the golden files."""

    name = "golden-ellipse"


def registry() -> Registry:
    """The installed plugins plus the golden segmenter, in a private registry."""
    reg = Registry()
    reg.load_entry_points()
    reg.add_module(type("GoldenPlugin", (), {"register_segmenters": staticmethod(hookimpl(lambda register: register(EllipseSegmenter)))})(), "golden")
    return reg


def write_input(directory: Path) -> Path:
    """The golden image and its sidecar description in ``directory``."""
    path = directory / "golden.png"
    synthetic_image(*SIZE, seed=5).save(path)
    path.with_suffix(".json").write_text(json.dumps(DESCRIPTION))
    return path


def file_name(case: Case, c: Codec) -> str:
    """``<case>~<plugin>.v<version>+...`` for the decoder plugins, in header order."""
    stack = "+".join(f"{c.plugins[role].name}.v{c.plugins[role].version}" for role in DECODER_ROLES)
    return f"{case.name}~{stack}"


def codec(case: Case | None, reg: Registry) -> Codec:
    """The lite codec with the case's plugin (None: plain lite), from ``reg``."""
    overrides = [*PINNED, *(case.overrides if case else [])]
    profile = load_profile("lite", overrides)
    if profile.roles[Role.reference_codec].plugin == "avif":
        # the files were written at AVIF's slowest speed; the profile's speed (an encoder-only
        # setting, not in the file) may change without changing any plugin's bitstream
        apply_override(profile, f"reference_codec.speed={GOLDEN_AVIF_SPEED}")
    return Codec(profile.build(reg), profile, registry=reg)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def image_digest(image: Image.Image) -> str:
    return f"{image.mode} {image.width}x{image.height} {digest(image.tobytes())}"


def outcome(result: DecodeResult) -> dict[str, object]:
    """What a golden file must decode to."""
    masks = [np.asarray(o.mask, dtype=bool) for o in result.payload.objects]
    return {
        "texts": result.payload.texts(),
        "masks": [f"{m.shape[1]}x{m.shape[0]} {digest(np.packbits(m).tobytes())}" for m in masks],
        "reference": image_digest(result.reference),
        "image": image_digest(result.image),
    }


def main() -> None:
    """Write the golden files of cases that have none (never rewrites one)."""
    import tempfile

    GOLDEN.mkdir(parents=True, exist_ok=True)
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.is_file() else {}
    reg = registry()
    with tempfile.TemporaryDirectory() as tmp:
        source = write_input(Path(tmp))
        for case in CASES:
            cls = reg.get(case.role, case.plugin)
            if cls.version != case.version or cls.missing_requirements():
                continue
            c = codec(case, reg)
            name = file_name(case, c)
            path = GOLDEN / f"{name}.sedic"
            if path.exists():
                continue
            data = c.encode(source).data
            expected[name] = outcome(c.decode_detailed(data))
            path.write_bytes(data)
            EXPECTED.write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")
            print(f"wrote {path.name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
