"""Classical reference codecs (container stripping, scaling) and target-bpp rate control."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sedic_kit import Codec
from sedic_kit.cli import main
from sedic_kit.errors import FormatError, SedicError
from sedic_plugins.reference_codecs import isobmff
from sedic_plugins.reference_codecs.pillow import AvifCodec, HeicCodec, JpegCodec, WebpCodec


def photo(width: int = 120, height: int = 80, seed: int = 0) -> Image.Image:
    """Smooth gradients, a disc and texture: behaves like a small photo under lossy codecs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0)], -1)
    base[(x - width * 0.6) ** 2 + (y - height * 0.45) ** 2 < (height * 0.25) ** 2] = [240, 200, 40]
    return Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8), "RGB")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("cls", [AvifCodec, HeicCodec])
def test_heif_family_keeps_only_the_payload_and_decodes_like_the_full_file(cls: type) -> None:
    codec = cls(scale=2.0, quality=10)
    image = photo()
    small = image.resize((60, 40), Image.Resampling.LANCZOS)
    full = codec.write(small)
    section = codec.encode(image)
    # coded size 60x40 as varints, a 2-byte check value of the container boxes, then mdat only
    assert section == b"\x3b\x27" + isobmff.check_value(full) + isobmff.payload(full)
    assert len(full) - len(section) > 250  # the container boxes are gone
    assert codec.unstrip(section, (120, 80)) == full  # the rebuilt container is byte-identical
    decoded = codec.decode(section, 120, 80)
    assert decoded.size == (60, 40)
    assert np.array_equal(pixels(decoded), pixels(Image.open(io.BytesIO(full))))


@pytest.mark.parametrize(
    ("cls", "other_build"),
    [(AvifCodec, {"quality": 0, "speed": 10, "subsampling": "4:4:4"}), (HeicCodec, {"quality": 0, "chroma": 444})],
    ids=["avif", "heic"],
)
def test_a_decoder_library_that_rebuilds_other_boxes_is_named_not_silently_used(cls: type, other_build: dict) -> None:
    """A template written under other settings stands in for another libavif/x265 build."""
    section = cls(scale=2.0, quality=10).encode(photo())
    other = type("OtherBuild", (cls,), {"template_kwargs": lambda self: other_build})()
    assert isobmff.check_value(other.write(Image.new("RGB", (60, 40)), **other_build)) != section[2:4]
    library = "libavif" if cls is AvifCodec else "libheif"
    with pytest.raises(FormatError, match=rf"coded with another build of its library: this decoder \(.*{library} [\d.]+.*\) rebuilds a different container"):
        other.decode(section, 120, 80)


def test_container_rebuild_works_for_other_sizes_and_chroma() -> None:
    for size, subsampling in (((33, 17), "4:4:4"), ((300, 7), "4:2:0")):
        codec = AvifCodec(scale=1.0, quality=30, speed=8, subsampling=subsampling)
        image = photo(*size, seed=3)
        assert codec.unstrip(codec.encode(image), size) == codec.write(image)


def test_webp_keeps_the_bare_vp8_chunk() -> None:
    codec = WebpCodec(scale=1.0, quality=20)
    image = photo()
    full = codec.write(image)
    section = codec.encode(image)
    assert len(section) == len(full) - 20 - (len(section) % 2)
    assert np.array_equal(pixels(codec.decode(section, 120, 80)), pixels(Image.open(io.BytesIO(full))))


def test_jpeg_section_is_the_file() -> None:
    codec = JpegCodec(scale=2.0, quality=5)
    section = codec.encode(photo())
    assert section[:2] == b"\xff\xd8"
    assert codec.decode(section, 120, 80).size == (60, 40)


def test_corrupt_sections_give_format_errors() -> None:
    codec = AvifCodec(scale=1.0, quality=10, speed=8)
    section = codec.encode(photo(40, 30))
    with pytest.raises(FormatError):
        codec.decode(section[:3], 40, 30)
    with pytest.raises(FormatError):
        isobmff.rebuild(b"\x00\x00\x00\x10ftypavif\x00\x00\x00\x00", b"x")


def test_through_the_codec_every_bit_is_in_the_file(tmp_path: Path) -> None:
    codec = Codec.from_profile("lite", overrides=["reference_codec.plugin=heic"], reference_codec={"scale": 2.0, "quality": 20})
    result = codec.encode(photo())
    path = result.save(tmp_path / "x.sedic")
    assert result.total_bits == 8 * path.stat().st_size == sum(result.bits.values())
    other = Codec.from_profile("lite")  # decodes with the plugin named in the header
    assert np.array_equal(pixels(other.decode(path)), pixels(codec.decode(result.data)))


@pytest.mark.parametrize("target", [0.8, 1.5])
def test_target_bpp_lands_at_or_just_under_the_target(target: float) -> None:
    codec = Codec.from_profile("lite", reference_codec={"speed": 8})
    image = photo(160, 120, seed=5)
    result = codec.encode(image, target_bpp=target)
    assert target * 0.85 <= result.bpp <= target
    assert any(n.startswith(f"target {target} bpp: reference scale=") for n in result.notes)
    assert codec.decode(result.data).size == (160, 120)


def test_unreachable_target_says_so_and_codecs_without_knobs_refuse() -> None:
    codec = Codec.from_profile("lite", reference_codec={"speed": 8})
    result = codec.encode(photo(), target_bpp=0.0001)
    assert "out of reach" in result.notes[-1]
    from sedic_kit.rate import fit_reference

    class Fixed(AvifCodec):
        def rate_ladder(self) -> list[dict[str, object]]:
            return []

    with pytest.raises(SedicError, match="cannot target a bitrate"):
        fit_reference(Fixed(), 1000, lambda c: (b"", {}))


def test_cli_target_bpp_reports_the_achieved_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.png"
    photo(160, 120, seed=7).save(src)
    assert main(["encode", str(src), "-o", str(tmp_path / "p.sedic"), "--target-bpp", "1.0", "--set", "reference_codec.speed=8"]) == 0
    printed = capsys.readouterr().out
    bpp = float(printed.split(" bpp")[0].rsplit(" ", 1)[1])
    assert 0.85 <= bpp <= 1.0 and 8 * (tmp_path / "p.sedic").stat().st_size / (160 * 120) == pytest.approx(bpp, abs=1e-5)
    assert "target 1.0 bpp" in printed
