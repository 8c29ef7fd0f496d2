"""Patch FID/KID (FID/256): the patch grid and its shifted copy, KID's subsets and seed, the flags.

The feature network is a tiny one (per-channel mean and spread of each sample) passed to the
suite in place of InceptionV3, so the samples it sees can be checked pixel for pixel; the
InceptionV3 loading path itself runs in tests/test_learned_metrics.py (second CI stage).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sedic_kit.eval.metrics import MetricSuite
from sedic_kit.eval.patch_fid import PATCH, WHOLE, RealismProtocol, patch_boxes

torch = pytest.importorskip("torch")
pytest.importorskip("torchmetrics")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


class Seen:
    """A tiny feature network: 6 features per sample (channel means and standard deviations); keeps every batch it saw."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def __call__(self, x: Any) -> Any:
        assert x.dtype == torch.uint8 and x.ndim == 4 and x.shape[1] == 3
        self.batches.append(x.clone())
        f = x.double()
        return torch.cat([f.mean(dim=(2, 3)), f.std(dim=(2, 3))], dim=1)


def kodak(stem: str = "kodim03") -> Image.Image:
    with Image.open(EXAMPLES / f"{stem}.png") as im:
        return im.convert("RGB")


def noisy(image: Image.Image, amount: int, seed: int = 0) -> Image.Image:
    arr = np.asarray(image, dtype=int) + np.random.default_rng(seed).integers(-amount, amount + 1, (image.height, image.width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("size", "count"),
    [
        ((768, 512), 6 + 2),  # Kodak landscape: 3x2 grid, shifted 2x1
        ((512, 768), 6 + 2),  # Kodak portrait
        ((768, 768), 9 + 4),  # DIV2K/CLIC 768 crop: 13 (1300 patches on DIV2K's 100, 5564 on CLIC2020's 428)
        ((384, 384), 1 + 1),  # exactly 1.5 patches per side: the shifted grid is added
        ((383, 600), 2),  # under 1.5 patches on one side: no shifted grid
        ((255, 900), 0),  # narrower than a patch: nothing to sample
    ],
)
def test_patch_count_and_shift_rule(size: tuple[int, int], count: int) -> None:
    boxes = patch_boxes(*size, PATCH)
    assert len(boxes) == count
    w, h = size
    for left, top, right, bottom in boxes:
        assert right - left == bottom - top == 256 and 0 <= left and right <= w and 0 <= top and bottom <= h
        assert (left % 256, top % 256) in ((0, 0), (128, 128))  # the grid, or the grid shifted by half a patch
    assert len(set(boxes)) == len(boxes)


def test_patch_size_and_shift_are_configurable() -> None:
    assert len(patch_boxes(768, 512, RealismProtocol(patch=128))) == 6 * 4 + 5 * 3  # shift 64 by default
    assert len(patch_boxes(768, 512, RealismProtocol(patch=128, shift=0))) == 6 * 4  # no second grid
    assert patch_boxes(768, 512, RealismProtocol(patch=256, shift=64))[-1] == (320, 64, 576, 320)
    assert patch_boxes(768, 512, WHOLE) == [(0, 0, 768, 512)]
    assert PATCH.to_dict()["name"] == "patch-256/shift-128" and PATCH.to_dict()["seed"] == 0


def test_the_network_sees_exactly_the_patches_and_fid_counts_them() -> None:
    seen = Seen()
    suite = MetricSuite(["fid", "kid", "fid-whole"], features=seen)
    assert set(suite.set) == {"fid", "kid", "fid-whole"} and not suite.unavailable
    originals = [kodak("kodim03"), kodak("kodim23")]
    recons = [noisy(im, 40) for im in originals]
    values, info = suite.score_set(recons, originals)
    patches = torch.cat([b for b in seen.batches if b.shape[-1] == 256])
    assert len(patches) == 2 * 2 * 8  # originals and reconstructions, 8 patches each, extracted once for FID and KID
    arr = np.asarray(originals[0])
    for i, (left, top, right, bottom) in enumerate(patch_boxes(768, 512, PATCH)):
        assert np.array_equal(patches[i].numpy().transpose(1, 2, 0), arr[top:bottom, left:right])
    assert info["fid"]["samples"] == info["kid"]["samples"] == 16 and info["fid-whole"]["samples"] == 2
    assert info["fid"]["protocol"]["name"] == "patch-256/shift-128" and info["fid-whole"]["protocol"]["name"] == "whole-image"
    assert values["fid"] is not None and values["fid"] > 0 and values["kid"] is not None
    assert any("only 16 samples" in f for f in info["fid"]["flags"])  # Kodak-sized sets are flagged
    assert info["kid"]["subset_size"] == 16 and any("every subset is the whole set" in f for f in info["kid"]["flags"])
    same, _ = MetricSuite(["fid"], features=Seen()).score_set(originals, originals)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)


def test_kid_subsets_are_seeded() -> None:
    originals = [kodak("kodim03"), kodak("kodim23")]
    recons = [noisy(im, 60, seed=1) for im in originals]
    small = RealismProtocol(patch=128, kid_subset_size=8)  # 39 patches per image: subsets are real draws

    def kid(seed: int) -> tuple[float, dict]:
        values, info = MetricSuite(["kid"], realism=RealismProtocol(patch=128, kid_subset_size=8, seed=seed), features=Seen()).score_set(recons, originals)
        return values["kid"], info["kid"]

    (a, info), (b, _), (c, _) = kid(0), kid(0), kid(7)
    assert a == b and a != c  # the same seed gives the same KID, another seed other subsets
    assert info["subset_size"] == small.kid_subset_size and info["samples"] == 78 and info["std"] > 0
    assert info["protocol"]["seed"] == 0 and info["protocol"]["kid_subset_size"] == 8
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    kid(0)
    assert torch.rand(1) == before  # the seed is local: the caller's random state is untouched


def test_images_smaller_than_a_patch_give_no_value_and_say_why() -> None:
    tiny = [kodak().resize((200, 150))] * 2
    values, info = MetricSuite(["fid", "kid"], features=Seen()).score_set(tiny, tiny)
    assert values == {"fid": None, "kid": None}
    assert "needs at least two (images of at least 256 px on each side)" in info["fid"]["flags"][0]


def test_compare_writes_the_protocol_and_patch_counts(tmp_path: Path) -> None:
    """compare on two full-size Kodak images with the tiny network: protocol, counts and flags in every output."""
    from sedic_kit.eval.compare import compare
    from sedic_kit.eval.runner import EvalConfig

    data = tmp_path / "kodak"
    data.mkdir()
    for stem in ("kodim03", "kodim23"):
        kodak(stem).save(data / f"{stem}.png")
    out = tmp_path / "out"
    cfg = EvalConfig(profile="lite-webp", data=data, out=out, metrics=["fid", "kid"], realism=RealismProtocol(seed=5))
    suite = MetricSuite(["fid", "kid"], realism=cfg.realism, features=Seen())
    written = compare(["lite-webp"], cfg, "kodak", suite=suite)
    assert written is not None
    combined = json.loads((out / "compare.json").read_text())
    realism = combined["setup"]["realism"]
    assert realism["name"] == "patch-256/shift-128" and realism["seed"] == 5 and realism["metrics"] == ["fid", "kid"]
    assert realism["samples"] == 16 and "only 16 samples" in realism["flags"][0]
    (point,) = combined["results"][0]["realism"]
    assert point["fid"]["samples"] == 16 and point["kid"]["subset_size"] == 16 and point["fid"]["flags"]
    summary = json.loads((out / "lite-webp" / "results.json").read_text())
    assert summary["realism"]["protocol"]["name"] == "patch-256/shift-128" and summary["realism"]["metrics"]["fid"]["samples"] == 16
    page = (out / "report.html").read_text()
    assert "patch-256/shift-128" in page and "non-overlapping 256x256 patches" in page and "seed 5" in page
    assert "16 samples from these images" in page
    assert "FID: only 16 samples" in page and " *</td>" in page  # the flagged value is marked in the table
