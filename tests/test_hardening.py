"""Issue 10's reproducers: crafted files and bad inputs give one clean error, fast, without large
allocations; temporary files are unique and cleaned up; encoding does not depend on the cores."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import brotli
import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_image
from sedic_kit import Codec, FormatError
from sedic_kit.cli import main
from sedic_kit.files import save_png, write_atomic
from sedic_kit.container import Reader, SedicFile, put_bytes, put_varint, unpack
from sedic_kit.describe import MAX_FIELD_CHARS
from sedic_kit.testing.fuzz import craft_v1, png_claiming, swap
from sedic_kit.roles import Role

FAST_S = 1.0


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec.from_profile("lite")


@pytest.fixture(scope="module")
def coded(codec: Codec, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A lite file (avif at 1/2, lm, cabac, upsample) of a 96x64 image with one object."""
    d = tmp_path_factory.mktemp("coded")
    synthetic_image().save(d / "a.png")
    sidecar = {"caption": "A yellow disc on a gradient.", "objects": [{"name": "disc", "details": "yellow", "box": [40, 12, 76, 46]}]}
    (d / "a.json").write_text(json.dumps(sidecar))
    return codec.encode(d / "a.png").data


def refused(codec: Codec, data: bytes, match: str) -> str:
    """Decode ``data``; it must fail with one FormatError line matching ``match`` within FAST_S."""
    start = time.perf_counter()
    with pytest.raises(FormatError, match=match) as info:
        codec.decode(data)
    assert time.perf_counter() - start < FAST_S
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def edit(data: bytes, **fields: object) -> SedicFile:
    f = unpack(data)
    for k, v in fields.items():
        setattr(f, k, v)
    return f


def caption_only(f: SedicFile) -> SedicFile:
    """``f`` with a caption and no objects (utf8 text, empty mask section)."""
    f.masks = b""
    f.text = b"\x01\x07caption"
    return swap(f, Role.text_coder, "utf8")


# -- decoder limits ------------------------------------------------------------------------
@pytest.mark.parametrize("side", [30000, 100000])
def test_header_size_above_the_decoders_pixel_limit(codec: Codec, coded: bytes, side: int) -> None:
    msg = refused(codec, craft_v1(edit(coded, width=side, height=side)), "above the decoder's limit")
    assert "--max-pixels" in msg


def test_max_pixels_raises_the_decode_limit_in_the_library_and_the_cli(coded: bytes, tmp_path: Path, capsys) -> None:
    big = craft_v1(caption_only(edit(coded, width=192, height=128)))  # the 48x32 reference is 192x128 at 1/4: a valid file
    assert Codec.from_profile("lite").decode(big).size == (192, 128)
    refused(Codec.from_profile("lite", max_decode_pixels=192 * 128 - 1), big, r"192x128 image \(24,576 pixels\), above the decoder's limit of 24,575")
    path = tmp_path / "big.sedic"
    path.write_bytes(big)
    assert main(["decode", str(path), "--max-pixels", "20000"]) == 1
    err = capsys.readouterr().err
    assert "above the decoder's limit" in err and err.count("\n") == 1
    assert main(["decode", str(path), "--max-pixels", "30000", "-o", str(tmp_path / "big.png")]) == 0
    assert Image.open(tmp_path / "big.png").size == (192, 128)


@pytest.mark.parametrize("coded_size", [(16384, 16384), (97, 64), (48, 2), (30000, 1)])
def test_avif_coded_size_must_be_the_header_size_at_a_codec_scale(codec: Codec, coded: bytes, coded_size: tuple[int, int]) -> None:
    f = unpack(coded)
    r = Reader(f.reference)
    r.varint("w"), r.varint("h")
    section = bytearray()
    put_varint(section, coded_size[0] - 1)
    put_varint(section, coded_size[1] - 1)
    msg = refused(codec, craft_v1(edit(coded, reference=bytes(section) + f.reference[r.pos :])), "coded size")
    assert "reference_codec 'avif'" in msg


def test_webp_and_jpeg_sizes_are_checked_before_decoding(codec: Codec, coded: bytes) -> None:
    image = synthetic_image(48, 32)
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=10)
    vp8 = bytearray(buf.getvalue()[20:])
    for size, match in (((16383, 4000), "coded size 16383x4000"), ((16383, 16383), "decompression bomb")):  # Pillow's own limit
        vp8[6:10] = struct.pack("<HH", *size)  # the keyframe header's width and height
        refused(codec, craft_v1(swap(edit(coded, reference=bytes(vp8)), Role.reference_codec, "webp")), match)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=10)
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 10000, 12000)
    refused(codec, craft_v1(swap(edit(coded, reference=bytes(jpeg)), Role.reference_codec, "jpeg")), "coded size 12000x10000")


def test_mask_coders_check_sizes_before_allocating(codec: Codec, coded: bytes) -> None:
    msg = refused(codec, craft_v1(swap(edit(coded, masks=png_claiming(20000, 4000)), Role.mask_coder, "png")), "20000x4000 PNG")
    assert "mask_coder 'png'" in msg
    refused(codec, craft_v1(swap(edit(coded, masks=png_claiming(100000, 100000)), Role.mask_coder, "png")), "decompression bomb")
    golomb = bytes([3]) + b"\xff\xff\xff\xff" + b"\0" * 4  # k=0, 2^32-1 runs in 9 bytes
    refused(codec, craft_v1(swap(edit(coded, masks=golomb), Role.mask_coder, "golomb")), "run count")
    refused(codec, craft_v1(swap(edit(coded, masks=b"\1" * 3), Role.mask_coder, "raw")), "3 bytes, expected 12")
    big = craft_v1(swap(edit(coded, width=1920, height=1280, masks=b"\1"), Role.mask_coder, "cabac", {"scale": 1}))
    refused(Codec.from_profile("lite", max_decode_pixels=1 << 25), big, "1 masks in 1 bytes")  # 2.5 M cells: not in 8 bits
    refused(codec, big, r"decoding the mask section \(mask_coder 'cabac'\) costs 17,203,200 pixel-equivalents")  # 7 per cell


def text_section(coder: str, inflated: bytes) -> bytes:
    if coder == "brotli":
        return brotli.compress(inflated, quality=5)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(inflated) + c.flush()


@pytest.mark.parametrize("coder", ["zlib", "brotli"])
def test_text_bombs_stop_while_inflating(codec: Codec, coded: bytes, coder: str) -> None:
    bomb = text_section(coder, bytes(256 << 20 if coder == "brotli" else 32 << 20))
    assert len(bomb) < 40_000
    refused(codec, craft_v1(swap(edit(coded, text=bomb), Role.text_coder, coder)), "inflates past")
    layout = bytearray()
    put_varint(layout, 3)
    for text in (b"caption", b"name", b"w" * (MAX_FIELD_CHARS + 1)):
        put_bytes(layout, text)
    too_long = text_section(coder, bytes(layout))
    refused(codec, craft_v1(swap(edit(coded, text=too_long), Role.text_coder, coder)), f"at most {MAX_FIELD_CHARS}")
    cut = text_section(coder, b"\x01\x05hello")[:-2]
    refused(codec, craft_v1(swap(edit(coded, text=cut), Role.text_coder, coder)), "text section")


def test_too_many_strings_in_the_lm_and_utf8_coders(codec: Codec, coded: bytes) -> None:
    layout = bytearray()
    put_varint(layout, 9)
    for _ in range(9):
        put_bytes(layout, b"a")
    refused(codec, craft_v1(swap(edit(coded, text=bytes(layout)), Role.text_coder, "utf8")), "9 strings, at most 7")
    refused(codec, craft_v1(edit(coded, text=b"\xff" * 40)), "text section")


@pytest.mark.parametrize(
    "raw", [b"[" * 100000 + b"]" * 100000, b'{"a":' * 50 + b"1" + b"}" * 50, b'{"filter":NaN}', b'{"s":"' + b"x" * 5000 + b'"}']
)
def test_header_json_is_bounded_in_depth_and_size(codec: Codec, coded: bytes, raw: bytes) -> None:
    msg = refused(codec, craft_v1(unpack(coded), {Role.restorer: raw}), "bad restorer config")
    assert "nested too deeply" in msg or "not a number" in msg or "bytes (at most" in msg


def test_objects_with_an_empty_mask_section(codec: Codec, coded: bytes) -> None:
    refused(codec, craft_v1(edit(coded, masks=b"")), "mask section is empty but there are 1 objects")


def test_all_empty_masks_still_code_to_a_non_empty_section(codec: Codec) -> None:
    from sedic_plugins.mask_coders.cabac import CabacMaskCoder

    coder = CabacMaskCoder()
    for masks in ([np.zeros((64, 96), bool)], [np.zeros((64, 96), bool)] * 3):
        data = coder.encode(masks, 96, 64)
        assert data  # never empty when there are objects
        assert not any(m.any() for m in coder.decode(data, len(masks), 96, 64))


def test_memory_error_in_a_plugin_becomes_one_format_error_line(coded: bytes, tmp_path: Path) -> None:
    """A valid 10000x10000 file (a 157x157 reference at 1/64, a caption, no objects) whose restoration
    needs 300 MB, decoded by the CLI under a 200 MB address-space cap."""
    from sedic_plugins.reference_codecs.pillow import AvifCodec

    small = Image.new("RGB", (157, 157), (90, 120, 30))
    avif = AvifCodec(quality=0, speed=10)
    section = avif.strip(small, avif.write(small))
    f = caption_only(edit(coded, width=10000, height=10000, reference=section))
    path = tmp_path / "huge.sedic"
    path.write_bytes(craft_v1(f))
    script = (
        "import resource, sys\n"
        "from sedic_kit.cli import main\n"
        "import sedic_plugins.reference_codecs.pillow, sedic_plugins.mask_coders.cabac, sedic_plugins.restorers.upsample\n"
        "from sedic_kit import Codec\n"
        "Codec.from_profile('lite')\n"
        "vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + (200 << 20), resource.RLIM_INFINITY))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["decode", str(path), "--max-pixels", "100000000", "-o", str(tmp_path / "x.png")]  # past the default budget
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cannot restore the image (restorer 'upsample'): MemoryError" in proc.stderr


# -- encoder inputs ------------------------------------------------------------------------
def test_truncated_jpeg_is_one_line(tmp_path: Path, capsys) -> None:
    buf = io.BytesIO()
    synthetic_image().save(buf, "JPEG")
    for n in (30, 300):
        path = tmp_path / f"cut{n}.jpg"
        path.write_bytes(buf.getvalue()[:n])
        assert main(["encode", str(path), "-o", str(tmp_path / "x.sedic")]) == 1
        err = capsys.readouterr().err
        assert f"cut{n}.jpg: cannot" in err and err.count("\n") == 1


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "1e30"])
def test_non_finite_or_huge_sidecar_boxes_are_one_line(tmp_path: Path, value: str, capsys) -> None:
    synthetic_image().save(tmp_path / "a.png")
    (tmp_path / "a.json").write_text('{"caption": "x", "objects": [{"name": "disc", "box": [0, 0, %s, 10]}]}' % value)
    assert main(["encode", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.sedic")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a.json" in err and ("box" in err or "not a number" in err)


def test_deeply_nested_sidecar_json_is_one_line(tmp_path: Path, capsys) -> None:
    synthetic_image().save(tmp_path / "a.png")
    (tmp_path / "a.json").write_text("[" * 100000 + "]" * 100000)
    assert main(["encode", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.sedic")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested too deeply" in err


def test_heic_input_is_read(tmp_path: Path) -> None:
    """In a fresh process (nothing else registered pillow-heif's opener), as a user runs it."""
    import pillow_heif

    pillow_heif.from_pillow(synthetic_image()).save(tmp_path / "a.heic", quality=90)
    proc = subprocess.run(
        [sys.executable, "-m", "sedic_kit", "encode", str(tmp_path / "a.heic"), "-o", str(tmp_path / "a.sedic")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert Codec.from_profile("lite").decode(tmp_path / "a.sedic").size == (96, 64)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_input_notes_the_frame_coded(tmp_path: Path, fmt: str, capsys) -> None:
    frames = [synthetic_image(seed=i) for i in range(3)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100)
    assert main(["encode", str(path), "-o", str(tmp_path / "a.sedic")]) == 0
    assert f"warning: {fmt} with 3 frames (animated or multi-page): coded frame 1 of 3" in capsys.readouterr().err  # warnings go to stderr


def test_characters_per_field_are_bounded(tmp_path: Path, codec: Codec) -> None:
    synthetic_image().save(tmp_path / "a.png")
    word = "x" * 100_000
    (tmp_path / "a.json").write_text(json.dumps({"caption": word, "objects": [{"name": word, "details": f"a {word}"}]}))
    result = codec.encode(tmp_path / "a.png")
    assert len(result.payload.caption) == MAX_FIELD_CHARS and result.payload.objects[0].details == "a"
    assert len(result.data) < 2000
    decoded = codec.decode_detailed(result.data).payload
    assert decoded.caption == result.payload.caption


# -- atomic writes -------------------------------------------------------------------------
def test_concurrent_atomic_writes_never_collide(tmp_path: Path) -> None:
    target = tmp_path / "out.sedic"
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(50):
                write_atomic(target, bytes([k]) * (1000 + i))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = target.read_bytes()
    assert len(set(data)) == 1 and 1000 <= len(data) < 1050
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.sedic"]
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError):
        write_atomic(tmp_path / "adir", b"x")
    with pytest.raises(OSError):
        save_png(synthetic_image(), tmp_path / "adir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"] and not any((tmp_path / "adir").iterdir())


# -- determinism ---------------------------------------------------------------------------
def test_avif_bytes_do_not_depend_on_the_cores(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPU cores to compare against one")
    synthetic_image(192, 128).save(tmp_path / "a.png")
    outs = []
    for cpus in ("0", ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:2])):
        out = tmp_path / f"a{len(cpus)}.sedic"
        subprocess.run(
            ["taskset", "-c", cpus, sys.executable, "-m", "sedic_kit", "encode", str(tmp_path / "a.png"), "-o", str(out)],
            check=True, capture_output=True,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
