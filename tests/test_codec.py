"""Library API: encode/decode round trips, bit accounting, determinism, decoder plugin checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sedic_kit import Codec, FormatError, ProfileError
from sedic_kit.container import PluginRef, SedicFile, pack, unpack
from sedic_kit.imaging import psnr
from sedic_kit.roles import Role


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec.from_profile("lite")


def test_encode_reports_every_bit_of_the_file(codec: Codec, small_image: Path, tmp_path: Path) -> None:
    result = codec.encode(small_image)
    path = result.save(tmp_path / "x.sedic")
    assert result.total_bits == 8 * path.stat().st_size == sum(result.bits.values())
    assert set(result.bits) >= {"framing", "config", "reference", "text", "masks"}
    assert result.bits["text"] > 0 and result.bits["masks"] > 0
    assert result.bpp == pytest.approx(result.total_bits / (96 * 64))
    assert [o.name for o in result.payload.objects] == ["yellow disc"]


def test_round_trip_is_deterministic_and_full_size(codec: Codec, small_image: Path) -> None:
    data = codec.encode(small_image).data
    first = codec.decode(data)
    second = Codec.from_profile("lite").decode(data)
    assert first.size == (96, 64) and first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert psnr(first, Image.open(small_image).convert("RGB")) > 20


def test_decode_detailed_returns_payload_and_reference(codec: Codec, small_image: Path) -> None:
    result = codec.encode(small_image)
    decoded = codec.decode_detailed(result.data)
    assert decoded.payload.caption == result.payload.caption
    assert decoded.payload.objects[0].mask is not None and decoded.payload.objects[0].mask.dtype == bool
    assert decoded.reference.size == (48, 32)  # AVIF at scale 2
    assert set(decoded.timings) == {"text", "masks", "reference", "restore"}


def test_encoding_bytes_and_pil_inputs_agree(codec: Codec, small_image: Path) -> None:
    a = codec.encode(small_image).data
    b = codec.encode(small_image.read_bytes())
    c = codec.encode(Image.open(small_image))
    # bytes and PIL inputs have no path, hence no sidecar description
    assert b.data == c.data and b.payload.caption == ""
    assert len(a) > len(b.data)


def test_overrides_by_keyword_and_by_string(small_image: Path) -> None:
    a = Codec.from_profile("lite", reference_codec={"quality": 40})
    b = Codec.from_profile("lite", overrides=["reference_codec.quality=40"])
    assert a.encode(small_image).data == b.encode(small_image).data
    with pytest.raises(ProfileError, match="reference_codec.quality"):
        Codec.from_profile("lite", reference_codec={"quality": "high"})


def test_decoder_uses_the_files_plugins_not_the_local_profile(small_image: Path) -> None:
    data = Codec.from_profile("lite", restorer={"filter": "bicubic"}).encode(small_image).data
    f = unpack(data)
    assert f.plugins[Role.restorer].params == {"filter": "bicubic"}
    local = Codec.from_profile("lite")  # lanczos locally
    expected = Codec.from_profile("lite", restorer={"filter": "bicubic"}).decode(data)
    assert np.array_equal(np.asarray(local.decode(data)), np.asarray(expected))


def rewrite(data: bytes, role: Role, ref: PluginRef) -> bytes:
    f = unpack(data)
    f.plugins[role] = ref
    return pack(f)[0]


def test_missing_plugin_and_wrong_version_are_named(codec: Codec, small_image: Path) -> None:
    data = codec.encode(small_image).data
    with pytest.raises(FormatError, match="needs restorer 'orag-xl' v1, which is not installed"):
        codec.decode(rewrite(data, Role.restorer, PluginRef("orag-xl", 1)))
    with pytest.raises(FormatError, match="written by restorer 'upsample' v9"):
        codec.decode(rewrite(data, Role.restorer, PluginRef("upsample", 9)))
    with pytest.raises(FormatError, match="unknown restorer 'upsample' parameters: steps"):
        codec.decode(rewrite(data, Role.restorer, PluginRef("upsample", 1, {"steps": 3})))
    with pytest.raises(FormatError, match="corrupt"):
        codec.decode(rewrite(data, Role.restorer, PluginRef("upsample", 1, {"filter": "nearest-ish"})))


def test_garbage_sections_that_pass_the_crc_never_escape_as_other_errors(codec: Codec, small_image: Path) -> None:
    """Crafted sections (valid CRC) either fail with FormatError or decode to a valid image:
    arithmetic-coded sections have no redundancy, so some garbage is a valid code."""
    f = unpack(codec.encode(small_image).data)
    for field in ("reference", "text", "masks"):
        for garbage in (b"\x07garbage", b"\xff" * 40, b"\x00"):
            g = SedicFile(**{**f.__dict__, field: garbage})
            try:
                image = codec.decode(pack(g)[0])
            except FormatError:
                continue
            assert image.size == (96, 64) and image.mode == "RGB"
    with pytest.raises(FormatError):
        codec.decode(pack(SedicFile(**{**f.__dict__, "reference": b"\x07garbage"}))[0])


def test_summary_is_json_serialisable(codec: Codec, small_image: Path) -> None:
    summary = codec.encode(small_image).summary()
    assert json.loads(json.dumps(summary))["bytes"] > 0


def test_every_mask_coder_gets_the_reference_as_the_decoder_sees_it(small_image: Path) -> None:
    from sedic_plugins.mask_coders.grid import RawMaskCoder

    from sedic_kit import hookimpl
    from sedic_kit.plugins import Registry

    seen: list[tuple[str, bytes]] = []

    class Recording(RawMaskCoder):  # conditions on nothing, still given the reference
        name = "recording"

        def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
            assert reference is not None
            seen.append(("encode", reference.tobytes()))
            return super().encode(masks, width, height, reference)

        def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
            assert reference is not None
            seen.append(("decode", reference.tobytes()))
            return super().decode(data, count, width, height, reference)

    registry = Registry()
    registry.load_entry_points()
    registry.add_module(type("M", (), {"register_entropy_coders": staticmethod(hookimpl(lambda register: register(Recording)))})(), "m")
    codec = Codec.from_profile("lite", overrides=["mask_coder.plugin=recording"], registry=registry)
    decoded = codec.decode_detailed(codec.encode(small_image).data)
    assert [kind for kind, _ in seen] == ["encode", "decode"]
    assert seen[0][1] == seen[1][1] == decoded.reference.tobytes()
    assert codec.plugins.mask_coder is codec.mask_coder and isinstance(codec.mask_coder, Recording)
