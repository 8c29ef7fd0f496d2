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


def test_fid_features_are_torch_fidelitys_with_the_original_resize(torch_home: Path) -> None:
    """The patch FID network is torch-fidelity's InceptionV3 from the hub cache, resizing as the TF1 FID code does."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as inception
    from torchmetrics.image.fid import NoTrainInceptionV3

    from sedic_kit.eval.metrics import load_inception
    from sedic_kit.eval.patch_fid import INCEPTION_WEIGHTS, PATCH, samples

    weights = str(torch_home / "hub" / "checkpoints" / INCEPTION_WEIGHTS)
    with Image.open(EXAMPLES / "kodim03.png") as im:
        x = samples(im.convert("RGB"), PATCH)[:3]  # three 256x256 patches, resized to 299 by the network
    ours = load_inception()(x)
    reference = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights).eval()
    with torch.no_grad():
        (theirs,) = reference(x)
        antialiased = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights, antialias=True)(x)
    # Bit-identical to torch-fidelity's own extractor, and not to torchmetrics' default antialiased resize
    # (random weights make the features nearly constant, so the difference is tiny but exact equality tells).
    assert ours.shape == (3, 2048) and torch.equal(ours, theirs.reshape(3, -1))
    assert not torch.equal(ours, antialiased)


def test_eval_reports_lpips_dists_fid_end_to_end(torch_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for stem in ("kodim03", "kodim23"):  # full size: 8 FID patches each
        with Image.open(EXAMPLES / f"{stem}.png") as im:
            im.convert("RGB").save(data / f"{stem}.png")
        shutil.copy(EXAMPLES / f"{stem}.json", data / f"{stem}.json")
    out = tmp_path / "out"
    env = {**os.environ, "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["eval", "--profile", "lite-webp", "--data", str(data), "--out", str(out), "--metrics", "lpips,dists,fid,kid,fid-whole"]
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "lite-webp" / "results.json").read_text())
    assert summary["unavailable"] == {}
    for key in ("lpips", "dists", "fid", "kid", "fid-whole"):
        (value,) = summary["results"][key]
        assert math.isfinite(value) and (value >= 0 or key == "kid"), (key, value)  # KID's estimator is unbiased: may be < 0
    realism = summary["realism"]["metrics"]
    assert realism["fid"]["samples"] == realism["kid"]["samples"] == 16 and realism["fid-whole"]["samples"] == 2
    assert realism["kid"]["subset_size"] == 16 and realism["kid"]["protocol"]["seed"] == 0 and realism["fid"]["flags"]
    assert all(r["lpips"] > 0 and r["dists"] > 0 for r in summary["images"])
    assert (out / "plots" / "fid.png").is_file()
