"""Side-information coders: exact round trips, clear errors on corrupt input, bits counted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sedic_kit.codec import Codec
from sedic_kit.container import SedicFile, pack, unpack
from sedic_kit.errors import FormatError
from sedic_kit.imaging import resize_mask
from sedic_kit.masks import to_grid
from sedic_kit.payload import Payload, SemanticObject
from sedic_plugins.mask_coders.grid import PngMaskCoder
from sedic_plugins.text_coders.baseline import BrotliTextCoder, ZlibTextCoder
from sedic_plugins.mask_coders.cabac import CabacMaskCoder, block_means
from sedic_plugins.mask_coders.golomb import GolombMaskCoder
from sedic_plugins.text_coders.huffman import HuffmanTextCoder
from sedic_plugins.mask_coders.jbig1 import Jbig1MaskCoder
from sedic_plugins.text_coders.lm import LmTextCoder

CAPTION = (
    "Close-up of two macaws side by side, both facing left: a blue-and-yellow macaw on the left "
    "and a red green-winged macaw on the right. Soft natural light, shallow depth of field."
)
TEXTS = [CAPTION, "red macaw", "Parrot with bright scarlet head and body, white bare facial patch.", "", ""]
TEXT_CODERS = [LmTextCoder(), HuffmanTextCoder(), BrotliTextCoder(), ZlibTextCoder()]
JBIG = pytest.mark.skipif(bool(Jbig1MaskCoder.missing_requirements()), reason="libjbig not installed")
MASK_CODERS = [
    CabacMaskCoder(),
    CabacMaskCoder(scale=1),
    GolombMaskCoder(),
    GolombMaskCoder(scale=1),
    pytest.param(Jbig1MaskCoder(scale=1), marks=JBIG),
]
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("coder", TEXT_CODERS, ids=lambda c: c.name)
def test_text_examples_round_trip(coder):
    for texts in ([""], TEXTS, ["ÉCOLE café 中文 x²", "iPhone XmL", "A", "TWO WORDS", "\0\n\t"], ["a" * 3000]):
        assert coder.decode(coder.encode(texts)) == texts


def test_lm_beats_brotli_on_english():
    assert len(LmTextCoder().encode(TEXTS)) < 0.75 * len(BrotliTextCoder().encode(TEXTS))


@FAST
@given(st.lists(st.text(), min_size=0, max_size=7))
def test_lm_any_unicode_round_trips(texts):
    coder = LmTextCoder()
    assert coder.decode(coder.encode(texts)) == texts


@FAST
@given(st.lists(st.text(), min_size=1, max_size=5))
def test_huffman_any_unicode_round_trips(texts):
    coder = HuffmanTextCoder()
    assert coder.decode(coder.encode(texts)) == texts


@pytest.mark.parametrize("coder", TEXT_CODERS[:2], ids=lambda c: c.name)
@FAST
@given(data=st.binary(max_size=64))
def test_text_garbage_is_a_format_error_or_text(coder, data):
    start = time.perf_counter()
    try:
        out = coder.decode(data)
    except FormatError:
        pass
    else:
        assert all(isinstance(t, str) for t in out)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("coder", MASK_CODERS, ids=lambda c: f"{c.name}-{c.options.scale}")
@pytest.mark.parametrize("kind", ["empty", "full", "blobs"])
@pytest.mark.parametrize("size", [(1, 1), (7, 13), (64, 48)])
def test_mask_examples_round_trip(coder, kind, size):
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    shapes = {
        "empty": [np.zeros((h, w), bool)],
        "full": [np.ones((h, w), bool), np.ones((h, w), bool)],
        "blobs": [(xx - w / 3) ** 2 + (yy - h / 2) ** 2 < (w * h) / 9, xx > yy, (xx + yy) % 5 == 0],
    }[kind]
    data = coder.encode(shapes, w, h)
    out = coder.decode(data, len(shapes), w, h)
    scale = coder.options.scale
    assert [o.shape for o in out] == [to_grid(m, w, h, scale).shape for m in shapes]
    for got, mask in zip(out, shapes):
        assert np.array_equal(got, to_grid(mask, w, h, scale))
        assert np.array_equal(resize_mask(got, h, w), mask) or scale > 1


@settings(max_examples=30, deadline=None)
@given(
    arrays(bool, st.tuples(st.integers(0, 6), st.integers(1, 40), st.integers(1, 40))),
    st.sampled_from([1, 3, 8]),
)
def test_cabac_any_masks_round_trip(stack, scale):
    count, h, w = stack.shape
    coder = CabacMaskCoder(scale=scale)
    masks = list(stack)
    out = coder.decode(coder.encode(masks, w, h), count, w, h)
    assert len(out) == count
    for got, mask in zip(out, masks):
        assert np.array_equal(got, to_grid(mask, w, h, scale))


@settings(max_examples=30, deadline=None)
@given(arrays(bool, st.tuples(st.integers(0, 5), st.integers(1, 30), st.integers(1, 30))))
def test_golomb_any_masks_round_trip(stack):
    count, h, w = stack.shape
    coder = GolombMaskCoder(scale=1)
    out = coder.decode(coder.encode(list(stack), w, h), count, w, h)
    assert all(np.array_equal(a, b) for a, b in zip(out, stack))


@pytest.mark.parametrize(
    "coder", [CabacMaskCoder(), GolombMaskCoder(), pytest.param(Jbig1MaskCoder(), marks=JBIG)], ids=lambda c: c.name
)
@FAST
@given(data=st.binary(max_size=64), count=st.integers(1, 4))
def test_mask_garbage_is_a_format_error_or_masks(coder, data, count):
    start = time.perf_counter()
    try:
        out = coder.decode(data, count, 120, 90)
    except FormatError:
        pass
    else:
        assert len(out) == count and all(m.shape == (12, 15) for m in out)
    assert time.perf_counter() - start < 10


def test_cabac_uses_previous_masks():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:256, :256]
    blob = (xx - 128) ** 2 + (yy - 128) ** 2 < 70**2 + rng.integers(0, 2000, (256, 256))
    one = len(CabacMaskCoder().encode([blob], 256, 256))
    two = len(CabacMaskCoder().encode([blob, blob], 256, 256))
    assert two - one < one  # the second, identical mask is cheaper thanks to the first
    assert len(CabacMaskCoder().encode([blob], 256, 256)) < len(PngMaskCoder().encode([blob], 256, 256))


def test_cabac_conditions_on_the_reference():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:96, :128]
    masks = [
        (xx - 40) ** 2 + (yy - 50) ** 2 < 30**2 + rng.integers(0, 400, (96, 128)),
        (np.abs(xx - 100) < 20 + rng.integers(0, 3, (96, 128))) & (yy > 30),
    ]
    colours = np.where(masks[0][..., None], [200, 40, 40], np.where(masks[1][..., None], [40, 200, 40], [40, 40, 200]))
    reference = Image.fromarray((colours + rng.integers(0, 8, colours.shape)).astype(np.uint8)).resize((64, 48), Image.BOX)
    coder = CabacMaskCoder(scale=1)
    plain, conditioned = coder.encode(masks, 128, 96), coder.encode(masks, 128, 96, reference=reference)
    assert len(conditioned) < 0.9 * len(plain)
    out = coder.decode(conditioned, 2, 128, 96, reference=reference)
    assert all(np.array_equal(a, b) for a, b in zip(out, masks))
    try:  # without the reference the decoder follows other contexts
        wrong = coder.decode(conditioned, 2, 128, 96)
    except FormatError:
        pass
    else:
        assert not all(np.array_equal(a, b) for a, b in zip(wrong, masks))


def test_block_means_are_exact_integer_means():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    means = block_means(Image.fromarray(pixels), 10, 12)
    assert np.array_equal(means, pixels.astype(np.int64).reshape(10, 4, 12, 5, 3).sum(axis=(1, 3)) // 20)
    assert block_means(Image.fromarray(pixels), 64, 96).shape == (64, 96, 3)  # finer grid than the image


def test_reported_bits_equal_sections_in_file(tmp_path):
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    codec = Codec.from_profile("lite")
    assert (codec.text_coder.name, codec.mask_coder.name) == ("lm", "cabac")
    yy, xx = np.mgrid[:96, :128]
    objects = [SemanticObject(TEXTS[1], TEXTS[2], mask=(xx - 40) ** 2 + (yy - 50) ** 2 < 900)]
    payload = Payload(128, 96, CAPTION, objects)
    text = codec.text_coder.encode(payload.texts())
    result = codec.encode(image, payload=payload)
    f = unpack(result.data)
    reference = codec.reference_codec.decode(f.reference, 128, 96)
    masks = codec.mask_coder.encode([o.mask for o in objects], 128, 96, reference=reference)
    assert result.bits["text"] == 8 * len(f.text) == 8 * len(text)
    assert result.bits["masks"] == 8 * len(f.masks) == 8 * len(masks)
    decoded = codec.decode_detailed(result.data).payload
    assert decoded.texts() == payload.texts()
    assert np.array_equal(decoded.objects[0].mask, to_grid(objects[0].mask, 128, 96, 8))


def test_corrupt_sections_fail_or_decode_to_something_else():
    codec = Codec.from_profile("lite")
    yy, xx = np.mgrid[:64, :64]
    payload = Payload(64, 64, CAPTION, [SemanticObject("a", "b", mask=(xx - 30) ** 2 + (yy - 34) ** 2 < 400)])
    f = unpack(codec.encode(Image.new("RGB", (64, 64)), payload=payload).data)

    def with_sections(text: bytes, masks: bytes) -> bytes:
        return pack(SedicFile(f.width, f.height, f.plugins, f.reference, text, masks, f.extras))[0]

    # an arithmetic code has no redundancy: a damaged section fails or decodes to something else
    try:
        texts = codec.decode_detailed(with_sections(f.text[:3], f.masks)).payload.texts()
    except FormatError as exc:
        assert "text section" in str(exc)
    else:
        assert texts != payload.texts()
    try:
        masks = codec.decode_detailed(with_sections(f.text, b"\xff" * 9 + f.masks)).payload.objects[0].mask
    except FormatError as exc:
        assert "mask section" in str(exc)
    else:
        assert not np.array_equal(masks, to_grid(payload.objects[0].mask, 64, 64, 8))


def test_side_info_reads_descriptions_files_like_the_sidecar(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("side_info", Path(__file__).resolve().parents[1] / "benchmarks" / "side_info.py")
    side_info = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(side_info)  # type: ignore[union-attr]
    with pytest.raises(SystemExit, match="no descriptions\\*.json file with image entries in"):
        side_info.load(tmp_path, tmp_path)
    entry = {"image": "a.png", "width": 64, "height": 48, "caption": "c", "objects": [{"name": "n", "details": "d"}]}
    (tmp_path / "descriptions.json").write_text(json.dumps([entry]))
    with pytest.raises(SystemExit, match="a.png: missing .*a_obj0.png"):
        side_info.load(tmp_path, tmp_path)
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(tmp_path / "masks" / "a_obj0.png")
    Image.new("RGB", (64, 48), (10, 200, 30)).save(tmp_path / "a.png")
    [(payload, masks, reference)] = side_info.load(tmp_path, tmp_path)
    assert (payload.caption, len(masks), reference.size) == ("c", 1, (32, 24))  # the reference at its coded size
