"""The role examples as a user installs them (a real wheel build): listed, and their README command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_plugins import plugins_json


def test_installed_role_examples_run_as_their_readme_says(tmp_path: Path, small_image: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(REPO / "examples" / "sedic-role-examples")],
        check=True, capture_output=True, timeout=300,
    )
    listed = plugins_json(site, SEDIC_LOAD_PLUGINS="sedic-role-examples")
    mine = {(p["role"], p["name"]) for p in listed["plugins"] if p["distribution"] == "sedic-role-examples"}
    assert mine == {("describer", "csv"), ("grounder", "min-area"), ("segmenter", "ellipse"), ("reference_codec", "png"),
                    ("text_coder", "lzma"), ("mask_coder", "bbox"), ("restorer", "sharpen")}
    small_image.with_name("captions.csv").write_text("image,caption,name,details,box\nsmall.png,A disc,disc,yellow,40 12 76 46\n")
    readme = (REPO / "examples" / "sedic-role-examples" / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("sedic-kit run photo.png"))
    args = command.split()[1:]
    args[1] = str(small_image)
    env = {**os.environ, "PYTHONPATH": str(site), "SEDIC_LOAD_PLUGINS": "sedic-role-examples", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", *args, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "o" / "results.json").read_text())["images"][0]
    assert record["objects"] == ["disc"] and record["profile"] == "lite"
