"""What Codec.encode accepts: numpy arrays, an explicit description or payload; J enforced by the core."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_image
from sedic_kit import Codec, Describer, InputError, Options, Payload, SedicError, SemanticObject, SourceImage, hookimpl, load_profile
from sedic_kit.plugins import Registry, get_registry, reset_registry


@pytest.fixture
def codec() -> Codec:
    return Codec.from_profile("lite", segmenter={"plugin": "box"}, reference_codec={"plugin": "webp"})


def test_numpy_rgb_and_gray_arrays_round_trip(codec: Codec) -> None:
    image = synthetic_image()
    rgb = np.asarray(image)
    from_array = codec.encode(rgb)
    assert from_array.data == codec.encode(image).data
    assert codec.decode(from_array.data).size == (96, 64)
    gray = rgb[..., 0].copy()
    assert codec.encode(gray).data == codec.encode(Image.fromarray(gray, "L")).data
    assert codec.encode(rgb.astype(np.float32) / 255.0).data == from_array.data  # floats in [0, 1]
    assert "grayscale coded as RGB" in codec.encode(gray).warnings


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 4, 2), np.uint8), "expected H x W or H x W x 3"),
        (np.zeros((4, 4, 3), np.int64), "dtype int64"),
        (np.full((4, 4), 2.0), "finite values in"),
    ],
)
def test_unusable_arrays_get_one_clear_error(codec: Codec, array: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        codec.encode(array)


def test_in_memory_image_with_description(codec: Codec) -> None:
    image = synthetic_image()
    silent = codec.encode(image)
    assert silent.payload.caption == "" and any("no description" in w and "description=" in w for w in silent.warnings)
    captioned = codec.encode(image, description="a yellow disc on a gradient")
    assert captioned.payload.caption == "a yellow disc on a gradient" and captioned.warnings == []
    assert codec.decode_detailed(captioned.data).payload.caption == "a yellow disc on a gradient"
    described = Payload(96, 64, "a disc", [SemanticObject("disc", "yellow", (40, 12, 76, 46))])
    result = codec.encode(image, description=described)
    mask = result.payload.objects[0].mask
    assert mask is not None and mask[29, 58] and not mask[0, 0]  # grounding and segmentation still ran
    assert described.objects[0].mask is None  # the caller's payload is not modified


def test_payload_skips_the_semantic_stages(codec: Codec) -> None:
    mask = np.zeros((64, 96), bool)
    mask[10:20, 10:30] = True
    given = Payload(96, 64, "a box", [SemanticObject("box", "a small box", mask=mask)])
    result = codec.encode(synthetic_image(), payload=given)
    decoded = codec.decode_detailed(result.data).payload
    assert decoded.caption == "a box" and [o.name for o in decoded.objects] == ["box"]
    assert result.timings.keys().isdisjoint({"describe", "ground", "segment"})
    with pytest.raises(SedicError, match="not both"):
        codec.encode(synthetic_image(), description="x", payload=given)
    with pytest.raises(SedicError, match="expected \\(64, 96\\)"):
        codec.encode(synthetic_image(), payload=replace(given, objects=[SemanticObject("box", mask=mask[:10])]))


class Chatty(Describer):
    """A describer without max_objects that returns five objects."""

    name = "chatty"
    Options = Options

    def describe(self, source: SourceImage) -> Payload:
        w, h = source.size
        return Payload(w, h, "five things", [SemanticObject(f"thing {i}", "", (0, 0, w, h)) for i in range(5)])


@pytest.fixture
def registry() -> Iterator[Registry]:
    reset_registry()
    yield get_registry()
    reset_registry()


def test_the_core_keeps_at_most_three_objects(registry: Registry, small_image: Path) -> None:
    registry.add_module(SimpleNamespace(register_describers=hookimpl(lambda register: register(Chatty))), "chatty")
    profile = load_profile("lite", ["describer.plugin=chatty", "segmenter.plugin=box"])
    codec = Codec(profile.build(registry), profile)
    result = codec.encode(small_image)
    assert [o.name for o in result.payload.objects] == ["thing 0", "thing 1", "thing 2"]
    assert "describer 'chatty' gave 5 objects; kept the first 3 (max_objects)" in result.warnings
    assert len(codec.decode_detailed(result.data).payload.objects) == 3
    two = Codec.from_profile("lite", segmenter={"plugin": "box"}, describer={"max_objects": 1})
    many = Payload(96, 64, "c", [SemanticObject(f"o{i}", mask=np.ones((64, 96), bool)) for i in range(3)])
    assert len(two.encode(small_image, payload=many).payload.objects) == 1


ARRAYS = """
import json, sys
import numpy as np
from PIL import Image
from sedic_kit import Codec

codec = Codec.from_profile("lite", segmenter={"plugin": "box"}, reference_codec={"plugin": "webp"})
rgb = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
opaque = np.full(rgb.shape[:2], 255, np.uint8)
cases = {
    "uint8": rgb,
    "uint16": rgb.astype(np.uint16) * 257,
    "uint16 RGBA": np.dstack([rgb, opaque]).astype(np.uint16) * 257,
    "RGBA opaque": np.dstack([rgb, opaque]),
    "RGBA translucent": np.dstack([rgb, opaque // 2]),
}
out = {}
for name, array in cases.items():
    result = codec.encode(array, description="a yellow disc")
    out[name] = {"data": result.data.hex(), "warnings": result.warnings}
print(json.dumps(out))
"""


def test_uint16_and_opaque_rgba_arrays_in_a_fresh_process(small_image: Path) -> None:
    """README: arrays are H x W or H x W x 3/4, uint8 or uint16; an alpha of 255 everywhere is no
    compositing. uint16 colour is scaled like a 16-bit file (v * 257 comes back as v exactly)."""
    proc = subprocess.run([sys.executable, "-c", ARRAYS, str(small_image)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    same = out["uint8"]["data"]
    assert out["uint8"]["warnings"] == [] and out["RGBA opaque"] == {"data": same, "warnings": []}
    assert out["uint16"] == {"data": same, "warnings": ["converted 16-bit colour to 8-bit"]}
    assert out["uint16 RGBA"] == out["uint16"]
    assert out["RGBA translucent"]["warnings"] == ["alpha composited over white"] and out["RGBA translucent"]["data"] != same


def test_opaque_rgba_files_are_not_composited(small_image: Path, tmp_path: Path) -> None:
    """8- and 16-bit RGBA PNGs whose alpha is opaque everywhere code silently, as the RGB file does."""
    rgb = np.asarray(Image.open(small_image).convert("RGB"))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA").save(tmp_path / "opaque8.png")
    deep = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 255, np.uint8)]).astype(np.uint16) * 257  # OpenCV writes BGRA
    assert cv2.imwrite(str(tmp_path / "opaque16.png"), deep)
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "RGBA").save(tmp_path / "half.png")
    files = {}
    for name in ("opaque8", "opaque16", "half"):
        shutil.copy(small_image.with_suffix(".json"), tmp_path / f"{name}.json")
        proc = subprocess.run([sys.executable, "-m", "sedic_kit", "encode", str(tmp_path / f"{name}.png"), "-o", str(tmp_path / f"{name}.sedic")],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        files[name] = ((tmp_path / f"{name}.sedic").read_bytes(), proc.stderr)
    reference = Codec.from_profile("lite").encode(small_image).data
    assert files["opaque8"] == (reference, "") and files["opaque16"] == (reference, "")
    assert "warning: alpha composited over white" in files["half"][1]
