"""The command line: the main job, library/CLI agreement, one-line errors and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES
from sedic_kit import Codec
from sedic_kit.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_run_on_a_kodak_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "kodim23.png"
    shutil.copy(EXAMPLES / "kodim23.png", image)
    shutil.copy(EXAMPLES / "kodim23.json", tmp_path / "kodim23.json")
    rc, out, err = run_cli(capsys, "run", str(image), "--profile", "lite", "--out", str(tmp_path / "out"))
    assert rc == 0, err
    sedic = tmp_path / "out" / "kodim23.sedic"
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    record = report["images"][0]
    assert 8 * sedic.stat().st_size == record["file_bits"] == sum(record["bits"].values())
    assert record["bpp"] == pytest.approx(record["file_bits"] / (768 * 512))
    assert record["bpp"] < 0.05 and record["objects"] == ["red macaw", "blue-yellow macaw"]
    assert Image.open(tmp_path / "out" / "kodim23.png").size == (768, 512)
    assert report["name"] == "lite" and report["results"]["bpp"] == [record["bpp"]]
    assert "kodim23" in out

    # library and CLI agree bit for bit, and decoding is repeatable
    codec = Codec.from_profile("lite")
    assert codec.encode(image).data == sedic.read_bytes()
    rc, _, err = run_cli(capsys, "decode", str(sedic), "-o", str(tmp_path / "cli.png"))
    assert rc == 0, err
    cli = np.asarray(Image.open(tmp_path / "cli.png"))
    assert np.array_equal(cli, np.asarray(codec.decode(sedic)))
    assert np.array_equal(cli, np.asarray(Image.open(tmp_path / "out" / "kodim23.png")))


def test_encode_then_decode_commands(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(capsys, "encode", str(small_image), "-o", str(tmp_path / "a.sedic"), "--set", "reference_codec.quality=20")
    assert rc == 0, err
    size = (tmp_path / "a.sedic").stat().st_size
    assert f"{8 * size} bits" in out
    rc, out, err = run_cli(capsys, "decode", str(tmp_path / "a.sedic"))
    assert rc == 0 and Image.open(tmp_path / "a.png").size == (96, 64)


@pytest.fixture(scope="module")
def tiny_sedic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import synthetic_image

    directory = tmp_path_factory.mktemp("fuzz")
    image = directory / "t.png"
    synthetic_image(24, 16).save(image)
    (directory / "t.json").write_text('{"caption": "dot", "objects": [{"name": "dot", "details": "d", "box": [4, 4, 12, 12]}]}')
    codec = Codec.from_profile("lite", segmenter={"plugin": "box"}, reference_codec={"plugin": "webp"})
    result = codec.encode(image)
    path = directory / "t.sedic"
    path.write_bytes(result.data)
    return path


def assert_one_line_error(rc: int, err: str) -> None:
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err


def test_every_truncation_and_flipped_byte_fails_cleanly(tiny_sedic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_sedic.read_bytes()
    bad = tmp_path / "bad.sedic"
    assert 60 < len(data) < 200
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        assert_one_line_error(*run_cli(capsys, "decode", str(bad), "-o", str(tmp_path / "x.png"))[::2])
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        assert_one_line_error(*run_cli(capsys, "decode", str(bad), "-o", str(tmp_path / "x.png"))[::2])
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.png"], "missing.png: no such file"),
        (["run", "examples", "--profile", "nope"], "unknown profile 'nope'"),
        (["decode", "missing.sedic"], "no such file"),
        (["encode", "x.png", "--set", "restorer.steps=3"], "restorer.steps: unknown key"),
        (["profiles", "check", "offline"], "profile offline: 1 problem (listed above)"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, *args)
    assert_one_line_error(rc, err)
    assert message in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, "frobnicate")
    assert rc == 2 and "No such command" in err
    rc, _, err = run_cli(capsys, "run", "--no-such-option")
    assert rc == 2


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sedic"
    bad.write_bytes(b"\x5e\xdc garbage")
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", "--debug", "decode", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "FormatError" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", "decode", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_run_keeps_going_after_a_bad_image(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_image.parent / "broken.png").write_bytes(b"not a png")
    rc, out, err = run_cli(capsys, "run", str(small_image.parent), "--out", str(tmp_path / "o"))
    assert rc == 1 and "broken.png: not an image" in err
    assert (tmp_path / "o" / "small.sedic").exists()


def test_profiles_commands(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "profiles", "list")
    assert rc == 0 and "lite" in out and "offline" in out
    rc, out, _ = run_cli(capsys, "profiles", "show", "lite", "--set", "reference_codec.quality=9")
    assert rc == 0 and json.loads(out)["reference_codec"]["quality"] == 9
    rc, out, _ = run_cli(capsys, "profiles", "check", "lite")
    assert rc == 0 and "ok" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "--version")
    assert rc == 0 and out.startswith("sedic-kit ")
