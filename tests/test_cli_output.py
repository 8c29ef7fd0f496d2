"""What a user sees: progress on a terminal (under a pseudo-terminal), warnings once per kind,
plain-text models check, aligned profiles list, plurals, usage lines."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, importable, synthetic_image
from sedic_kit.cli import main
from sedic_kit.profiles import available_profiles


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def run_in_terminal(*args: str) -> tuple[int, str]:
    """Run ``python -m sedic_kit ARGS`` with stdout and stderr on a pseudo-terminal; return its output."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "OMP_NUM_THREADS": "1"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "sedic_kit", *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def kodim23(tmp_path: Path) -> Path:
    shutil.copy(EXAMPLES / "kodim23.png", tmp_path / "kodim23.png")
    shutil.copy(EXAMPLES / "kodim23.json", tmp_path / "kodim23.json")
    return tmp_path / "kodim23.png"


def test_progress_on_a_terminal_shows_bar_count_and_stage(kodim23: Path, small_image: Path, tmp_path: Path) -> None:
    rc, screen = run_in_terminal("run", str(kodim23), "--out", str(tmp_path / "out"))
    assert rc == 0, screen
    assert "━" in screen and "0/1" in screen and "kodim23.png" in screen
    assert "encoding kodim23.png" in screen and "decoding kodim23.png" in screen  # the phase in flight
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    stages = set(re.findall(r"0/1 -:--:-- (describe|ground|segment|reference|text|masks|restore)", plain))
    assert len(stages) >= 2, plain  # the stage of the image in flight, beside the bar
    assert "kodim23.png: 0.0" in screen and "wrote 1 reconstruction " in screen
    rc, quiet = run_in_terminal("run", str(small_image), "--out", str(tmp_path / "out"), "--quiet")
    assert rc == 0 and "━" not in quiet and "small.png: 0." not in quiet and "wrote 1 reconstruction " in quiet


def test_no_progress_bar_when_not_a_terminal(small_image: Path, tmp_path: Path) -> None:
    """Plain lines instead, every SEDIC_PROGRESS_SECONDS (10 by default: none on a run this short; see test_resume)."""
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", "run", str(small_image), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "" and "━" not in proc.stdout and "small.png: 0." in proc.stdout


def test_warnings_once_per_kind_with_the_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        rgba = np.dstack([np.asarray(synthetic_image(seed=i)), np.full((64, 96), 200, np.uint8)])
        Image.fromarray(rgba, "RGBA").save(folder / f"t{i}.png")
    rc, out, err = run_cli(capsys, "run", str(folder), "--out", str(tmp_path / "out"), "-s", "segmenter.plugin=box")
    assert rc == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: alpha composited over white [3 of 3 images: t0.png, t1.png, t2.png]",
        "warning: no description: describer 'sidecar' found none; coded without caption or objects [3 of 3 images: t0.png, t1.png, t2.png]",
    ]
    assert "warning:" not in out
    report = json.loads((tmp_path / "out" / "results.json").read_text())  # in the report too, by kind
    assert [(w["warning"].split(":")[0], w["images"]) for w in report["warnings"]] == [
        ("alpha composited over white", ["t0.png", "t1.png", "t2.png"]),
        ("no description", ["t0.png", "t1.png", "t2.png"]),
    ]
    assert [r["semantics"] for r in report["images"]] == [False, False, False]  # flagged per record, as eval does


def test_models_check_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "models", "check", "tiny")
    assert rc == 0 and "[green]" not in out and "[/" not in out
    assert all(line.startswith(("present  ", "    ")) for line in out.splitlines()), out
    assert re.search(r"^present  restorer\.model = tiny/sd15 \(restorer 'orag'\): [\d.]+ [kM]B in \d+ files at ", out, re.M)
    rc, out, _ = run_cli(capsys, "models", "check", "lite", "--set", "reference_codec.plugin=cheng2020-attn")
    torch_home = Path(os.environ["HOME"]) / ".cache" / "torch" / "hub" / "checkpoints"
    assert rc == 1 and "[red]" not in out and "huggingface" not in out
    assert f"missing  reference_codec.checkpoint = cheng2020-attn-mse-1 (reference_codec 'cheng2020-attn'): not found at {torch_home}/cheng2020_attn-mse-1-" in out
    assert "    needs https://compressai.s3.amazonaws.com/models/v1/cheng2020_attn-mse-1-" in out
    assert out.strip().splitlines()[-1] == (
        "fetch the missing ones where a network exists: sedic-kit models pull lite --set reference_codec.plugin=cheng2020-attn"
    )
    rc, out, _ = run_cli(capsys, "models", "check", "lite")
    assert rc == 0 and out.strip() == "profile lite needs no model weights"


def test_profiles_list_is_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "profiles", "list")
    lines = out.splitlines()
    names, paths = lines[0::2], lines[1::2]
    assert rc == 0 and [line.split()[0] for line in names] == list(available_profiles())
    starts = {len(line) - len(line.split("  ", 1)[1].lstrip()) for line in names}
    assert len(starts) == 1 and all(p.strip().endswith(".toml") and len(p) - len(p.lstrip()) in starts for p in paths)


def test_help_shows_names_not_types(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "run", "--help")
    assert rc == 0 and "Usage: sedic-kit run [OPTIONS] IMAGES..." in out
    assert "{" not in out and "<bool>" not in out and "<list" not in out
    rc, out, _ = run_cli(capsys, "--help")
    assert "--quiet" in out and "<bool>" not in out


def test_debug_and_quiet_are_accepted_anywhere(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(capsys, "encode", str(small_image), "--quiet", "-o", str(tmp_path / "a.sedic"), "--debug")
    assert rc == 0 and (tmp_path / "a.sedic").exists(), err
    rc, _, err = run_cli(capsys, "decode", str(tmp_path / "missing.sedic"), "--debug")
    assert rc == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("Error: ")


@pytest.mark.skipif(not importable("transformers", "diffusers"), reason="needs the [transformers] and [diffusion] extras")
def test_the_tiny_profile_is_quiet(small_image: Path, tmp_path: Path) -> None:
    """Building and loading the tiny models (a fresh cache) shows no library notices or progress bars."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEDIC_CACHE": str(tmp_path / "cache")}
    cli = [sys.executable, "-m", "sedic_kit", "run", str(small_image), "--profile", "tiny", "--out", str(tmp_path / "out")]
    proc = subprocess.run(cli, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith("warning: ") for line in proc.stderr.splitlines()), proc.stderr
    assert "small.png: 0." in proc.stdout and "it/s" not in proc.stdout + proc.stderr
