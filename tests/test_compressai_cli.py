"""CompressAI codecs through the CLI in fresh processes: the import order of the suite's warm
interpreter (transformers already imported) must not be what makes them work."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sedic_kit.container import unpack
from sedic_kit.install import install_hint
from sedic_kit.roles import Role

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("compressai") is None,
    reason=f"compressai not installed: {install_hint('compressai')}",
)

CODECS = ("cheng2020-attn", "cheng2020-anchor", "mbt2018", "mbt2018-mean", "bmshj2018-hyperprior")


def sedic_kit(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``sedic-kit ARGS`` in a new interpreter, with empty weight caches and one torch thread."""
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sedic_kit", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("codec", CODECS)
def test_run_with_each_codec_in_a_fresh_process(codec: str, small_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    sets = ["--set", f"reference_codec.plugin={codec}", "--set", "reference_codec.pretrained=false"]
    proc = sedic_kit("run", str(small_image), "--profile", "lite", *sets, "--out", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (sedic,) = out.glob("*.sedic")
    assert unpack(sedic.read_bytes()).plugins[Role.reference_codec].name == codec
    assert list(out.glob("*.png"))


def test_models_check_offline_in_a_fresh_process(tmp_path: Path) -> None:
    proc = sedic_kit("models", "check", "offline", "--json", tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stderr  # nothing is cached here: every model is missing
    rows = {r["role"]: r for r in json.loads(proc.stdout)["models"]}
    codec = rows["reference_codec"]
    assert codec["status"] == "missing" and codec["model"] == "cheng2020-attn-mse-1"
    assert codec["location"] == str(tmp_path / "torch-home" / "hub" / "checkpoints" / "cheng2020_attn-mse-1-465f2b64.pth.tar")


def test_plugins_lists_compressai_codecs_as_ok_in_a_fresh_process(tmp_path: Path) -> None:
    proc = sedic_kit("plugins", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["plugins"] if r["role"] == "reference_codec"}
    for codec in CODECS:
        assert rows[codec]["available"] and rows[codec]["problem"] is None, rows[codec]
