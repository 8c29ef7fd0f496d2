"""LPIPS, DISTS and FID through their real loading paths, on random backbone weights (no download).

The backbones are random torchvision / torch-fidelity networks saved under the file names their
libraries look for in the torch hub cache, so `sedic-kit eval` runs every line users run with the
published weights. Needs torchvision and torch-fidelity (the second CI stage, see README).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import importable
from sedic_kit.eval.metrics import MetricSuite
from sedic_kit.install import TORCHVISION_HINT


pytestmark = pytest.mark.skipif(
    not importable("torchvision.models", "torch_fidelity", "torchmetrics"),
    reason=f"needs torchvision and torch-fidelity (second CI stage, see README): {TORCHVISION_HINT}",
)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A torch hub cache holding random AlexNet, VGG16 and torch-fidelity InceptionV3 weights."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as inception
    import torchvision

    home = tmp_path_factory.mktemp("torch-home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), checkpoints / "alexnet-owt-7be5be79.pth")
    torch.save(torchvision.models.vgg16().state_dict(), checkpoints / "vgg16-397923af.pth")
    with pytest.MonkeyPatch.context() as mp:  # build the network without its (downloaded) weights
        mp.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: {})
        mp.setattr(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        net = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), checkpoints / "weights-inception-2015-12-05-6726825d.pth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        yield home


def test_lpips_and_dists_load_and_score(torch_home: Path) -> None:
    suite = MetricSuite(["lpips", "dists", "fid"])
    assert not suite.unavailable, suite.unavailable
    with Image.open(EXAMPLES / "kodim03.png") as im:
        original = im.convert("RGB").resize((192, 128))
    noisy = np.clip(np.asarray(original, dtype=int) + np.random.default_rng(0).integers(-30, 31, (128, 192, 3)), 0, 255)
    same, different = suite.score(original, original), suite.score(Image.fromarray(noisy.astype(np.uint8)), original)
    for key in ("lpips", "dists"):
        assert same[key] == pytest.approx(0.0, abs=1e-6) and different[key] > 1e-4, (key, same, different)


def test_eval_reports_lpips_dists_fid_end_to_end(torch_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for stem in ("kodim03", "kodim23"):
        with Image.open(EXAMPLES / f"{stem}.png") as im:
            im.convert("RGB").resize((252, 168), Image.Resampling.LANCZOS).save(data / f"{stem}.png")
        shutil.copy(EXAMPLES / f"{stem}.json", data / f"{stem}.json")
    out = tmp_path / "out"
    env = {**os.environ, "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["eval", "--profile", "lite-webp", "--data", str(data), "--out", str(out), "--metrics", "lpips,dists,fid"]
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "lite-webp" / "results.json").read_text())
    assert summary["unavailable"] == {}
    for key in ("lpips", "dists", "fid"):
        (value,) = summary["results"][key]
        assert math.isfinite(value) and value >= 0, (key, value)
    assert all(r["lpips"] > 0 and r["dists"] > 0 for r in summary["images"])
    assert (out / "plots" / "fid.png").is_file()
