"""``groundingdino-py`` (the official code) and ``grounding-dino`` (transformers' port) agree on the same weights.

One tiny random Grounding DINO (Swin-T, a 1+2-layer transformer, a tiny BERT) is written the way the
official models ship (config file + ``{"model": state_dict}``, ``groundingdino_tiny.py``) and converted
to transformers' layout (``groundingdino_convert.py``: every key mapped or dropped for a stated reason,
loaded with ``strict=True``). Then:

(a) raw outputs of the two models on one preprocessed tensor and caption (two captions, one per
    forward, as the plugins run them): the same -inf (non-text) logit positions, finite logits
    within ``LOGIT_ATOL`` and boxes within ``BOX_ATOL``. They are not bit-equal because the implementations order float32 arithmetic
    differently (fused vs. split q/k/v projections, attention kernels); measured here: ~5e-7 on
    logits within +-1, ~2e-7 on boxes (BENCHMARKS.md).
(b) both plugins on one image and payload keep the same objects with the same boxes (within
    ``PIXEL_TOL``: the float boxes agree to ~2e-5 px; rounding them outward to whole pixels can
    still split a value that lies on an integer). Thresholds are chosen so that the random model
    keeps some objects, drops one for its box score and one for its name tokens only: the test
    asserts all three cases occur. The preprocessors feed both models the same pixels here
    (asserted): groundingdino's ``RandomResize([size], max_size)`` and transformers'
    ``GroundingDinoImageProcessor`` both resize with PIL's bilinear filter to the same size; they
    can differ by one pixel on the long side only when ``max_size`` caps it at a fractional length
    (groundingdino rounds the short side first), which this 3:2 image does not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conftest import importable, synthetic_image
from groundingdino_tiny import MAX_SIZE, SIZE, tiny_groundingdino_py
from sedic_kit.payload import Payload, SemanticObject, SourceImage

pytestmark = pytest.mark.skipif(
    not importable("groundingdino.models", "transformers.models.grounding_dino"),
    reason="needs groundingdino-py (transformers < 5: CI stage 2b, see README)",
)

LOGIT_ATOL = 1e-4
BOX_ATOL = 1e-5
PIXEL_TOL = 1
BOX_THRESHOLD, TEXT_THRESHOLD = 0.62, 0.55
NAMES = ["red car", "blue house", "the yellow disc", "green tree", "dog", "red hat"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The tiny model's groundingdino-py options and its converted transformers directory."""
    from groundingdino_convert import write_transformers_model

    root = tmp_path_factory.mktemp("groundingdino")
    options = tiny_groundingdino_py(root / "official")
    write_transformers_model(Path(options["config"]), Path(options["checkpoint"]), root / "transformers", SIZE, MAX_SIZE)
    return options, root / "transformers"


def grounders(models: tuple[dict[str, Any], Path], **thresholds: float) -> tuple[Any, Any]:
    from sedic_plugins.grounders.grounding_dino import GroundingDinoGrounder
    from sedic_plugins.grounders.groundingdino_py import GroundingDinoPyGrounder

    options, hf_dir = models
    official = GroundingDinoPyGrounder(**options, **thresholds)
    return official, GroundingDinoGrounder(model=str(hf_dir), device="cpu", **thresholds)


def test_every_key_is_converted_and_nothing_is_left_over(models: tuple[dict[str, Any], Path]) -> None:
    import torch
    from groundingdino_convert import DROPPED, convert_state_dict, target_key
    from transformers import GroundingDinoForObjectDetection

    options, hf_dir = models
    source = torch.load(options["checkpoint"])["model"]
    converted = convert_state_dict(source)
    expected = GroundingDinoForObjectDetection.from_pretrained(hf_dir).state_dict()
    assert converted.keys() == expected.keys()
    assert all(torch.equal(converted[k], expected[k]) for k in expected)  # saved and reloaded, nothing re-initialised
    dropped = [k for k in source if target_key(k) is None]
    assert sorted(dropped) == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"], dropped
    assert all(any(re.search(p, k) for p in DROPPED) for k in dropped)
    with pytest.raises(KeyError, match="no rule maps groundingdino key transformer.new_head.weight"):
        convert_state_dict({**source, "transformer.new_head.weight": torch.zeros(1)})


def test_raw_outputs_agree(models: tuple[dict[str, Any], Path]) -> None:
    """(a) Same tensor, same caption: same logits and boxes. One caption per forward, as both plugins
    run the official model: groundingdino's text encoder tiles its text masks over the batch in the
    wrong order (``src_mask.repeat(nhead, 1, 1)`` in ``transformer_vanilla.py``), so a batch of
    different captions changes every caption's logits (by 0.26-0.42 here). transformers' port has no
    such coupling: its padded batch (what ``grounding-dino`` runs) equals its one-caption forwards."""
    import groundingdino.datasets.transforms as T
    import torch
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    official, _ = grounders(models)
    _, hf_dir = models
    gd = official.model()
    hf = GroundingDinoForObjectDetection.from_pretrained(hf_dir).eval()
    transform = T.Compose([T.RandomResize([SIZE], max_size=MAX_SIZE), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    image = synthetic_image(150, 100, seed=4)
    pixels = transform(image, None)[0][None]
    processor = AutoProcessor.from_pretrained(hf_dir)
    assert torch.equal(processor.image_processor(images=image, return_tensors="pt")["pixel_values"], pixels)
    captions = ["red car.", "the yellow disc."]
    batch = processor.tokenizer(captions, padding=True, return_tensors="pt")
    with torch.no_grad():
        batched = hf(pixel_values=pixels.expand(2, -1, -1, -1), **batch)
        for i, caption in enumerate(captions):
            a = gd(pixels, captions=[caption])
            b = hf(pixel_values=pixels, **processor.tokenizer([caption], return_tensors="pt"))
            finite = torch.isfinite(a["pred_logits"])
            assert torch.equal(finite, torch.isfinite(b.logits)) and 0 < finite.sum() < finite.numel()
            logit_diff = (a["pred_logits"][finite] - b.logits[finite]).abs().max().item()
            box_diff = (a["pred_boxes"] - b.pred_boxes).abs().max().item()
            print(f"{caption!r}: max |logit diff| {logit_diff:.2e} (logits {a['pred_logits'][finite].min():.1f} to "
                  f"{a['pred_logits'][finite].max():.1f}), max |box diff| {box_diff:.2e} (normalised cxcywh)")
            assert logit_diff <= LOGIT_ATOL and box_diff <= BOX_ATOL
            assert torch.allclose(batched.logits[i : i + 1], b.logits, atol=LOGIT_ATOL)
            assert torch.allclose(batched.pred_boxes[i : i + 1], b.pred_boxes, atol=BOX_ATOL)
            assert a["pred_boxes"].std() > 0.05  # not just the anchors: the random box heads move them


def test_plugins_keep_the_same_objects_and_boxes(models: tuple[dict[str, Any], Path]) -> None:
    """(b) Same image, same payload, same thresholds: same kept objects, same boxes."""
    official, port = grounders(models, box_threshold=BOX_THRESHOLD, text_threshold=TEXT_THRESHOLD)
    image = synthetic_image(150, 100, seed=4)
    source = SourceImage(image)
    payload = Payload(150, 100, "a test", [SemanticObject(n, details=f"{n}, seen closely") for n in NAMES])

    found = official.detect(source, NAMES)
    found_port = port.detect(source, NAMES)
    score_diff = max(abs(x.score - y.score) for a, b in zip(found, found_port) for x, y in zip(a, b))
    name_diff = max(abs(x.name_score - y.name_score) for a, b in zip(found, found_port) for x, y in zip(a, b))
    pixel_diff = max(abs(p - q) for a, b in zip(found, found_port) for x, y in zip(a, b) for p, q in zip(x.box, y.box))
    print(f"max |score diff| {score_diff:.2e}, max |name score diff| {name_diff:.2e}, max |box diff| {pixel_diff:.2e} px")
    assert score_diff < 1e-5 and name_diff < 1e-5 and pixel_diff < 1e-3

    boxes_pass = [any(d.score > BOX_THRESHOLD for d in ds) for ds in found]
    kept_names = [any(d.score > BOX_THRESHOLD and d.name_score > TEXT_THRESHOLD for d in ds) for ds in found]
    assert any(kept_names), "no object kept: thresholds too high for this random model"
    assert not all(boxes_pass), "no object dropped for its box score"
    assert any(b and not k for b, k in zip(boxes_pass, kept_names)), "no object dropped for its name tokens alone"

    kept, kept_port = official.ground(source, payload), port.ground(source, payload)
    print("kept:", [o.name for o in kept.objects], "; dropped for the box score:", [n for n, b in zip(NAMES, boxes_pass) if not b])
    assert [o.name for o in kept.objects] == [o.name for o in kept_port.objects] == [n for n, k in zip(NAMES, kept_names) if k]
    for a, b in zip(kept.objects, kept_port.objects):
        assert a.details == b.details and a.box is not None and b.box is not None and a.score is not None and b.score is not None
        assert max(abs(p - q) for p, q in zip(a.box, b.box)) <= PIXEL_TOL, (a.name, a.box, b.box)
        assert abs(a.score - b.score) < 1e-5
    print("kept boxes differ by at most", max(abs(p - q) for a, b in zip(kept.objects, kept_port.objects) for p, q in zip(a.box or (), b.box or ())), "px")
