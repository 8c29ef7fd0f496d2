"""``encode`` and ``decode`` never replace a file without ``--force``, and never their input;
the default decode name never collides with the source (real subprocesses, real files)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import EXAMPLES


def sedic_kit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sedic_kit", *args], capture_output=True, text=True, cwd=cwd, env=env)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_encode_then_decode_keeps_the_source(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "kodim23.png", tmp_path / "fresh.png")
    source = md5(tmp_path / "fresh.png")
    assert sedic_kit("encode", "fresh.png", cwd=tmp_path).returncode == 0
    proc = sedic_kit("decode", "fresh.sedic", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("fresh.decoded.png: 768x512"), proc.stderr
    assert md5(tmp_path / "fresh.png") == source and Image.open(tmp_path / "fresh.decoded.png").size == (768, 512)

    # every existing output is refused before any work, and kept
    sedic, decoded = md5(tmp_path / "fresh.sedic"), md5(tmp_path / "fresh.decoded.png")
    assert error_line(sedic_kit("encode", "fresh.png", cwd=tmp_path)) == "Error: fresh.sedic exists; pass --force to replace it, or -o to write elsewhere"
    assert error_line(sedic_kit("decode", "fresh.sedic", cwd=tmp_path)) == "Error: fresh.decoded.png exists; pass --force to replace it, or -o to write elsewhere"
    assert error_line(sedic_kit("decode", "fresh.sedic", "-o", "fresh.png", cwd=tmp_path)) == "Error: fresh.png exists; pass --force to replace it, or -o to write elsewhere"
    assert (md5(tmp_path / "fresh.png"), md5(tmp_path / "fresh.sedic"), md5(tmp_path / "fresh.decoded.png")) == (source, sedic, decoded)

    # an input never, --force or not
    assert error_line(sedic_kit("encode", "fresh.png", "-o", "fresh.png", "--force", cwd=tmp_path)) == (
        "Error: fresh.png: is the input fresh.png; choose another output with -o"
    )
    (tmp_path / "link.sedic").symlink_to(tmp_path / "fresh.sedic")
    assert error_line(sedic_kit("decode", "fresh.sedic", "-o", "link.sedic", "--force", cwd=tmp_path)) == (
        "Error: link.sedic: is the input fresh.sedic; choose another output with -o"
    )
    assert md5(tmp_path / "fresh.png") == source and md5(tmp_path / "fresh.sedic") == sedic

    # --force replaces what the user asks to replace
    proc = sedic_kit("encode", "fresh.png", "--force", "--set", "reference_codec.quality=40", cwd=tmp_path)
    assert proc.returncode == 0 and md5(tmp_path / "fresh.sedic") != sedic
    assert sedic_kit("decode", "fresh.sedic", "--force", cwd=tmp_path).returncode == 0
    assert md5(tmp_path / "fresh.decoded.png") != decoded and md5(tmp_path / "fresh.png") == source
