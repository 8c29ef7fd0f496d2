"""What Codec.encode accepts: numpy arrays, an explicit description or payload; J enforced by the core."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

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
