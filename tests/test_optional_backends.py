"""Backends needing packages that cannot be installed beside torch 2.13.0 CPU here (vllm, torchvision-based
segment-anything / sam2, groundingdino-py): their shared code is tested; their engines run where installed
(sam and sam2 in tests/test_contracts.py, on the random weights of tests/tiny_backends.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image
from sedic_plugins.segmenters.box_prompts import best_of_multimask, prompt_boxes, with_masks
from sedic_plugins.grounders.dino import Detection, GroundingOptions, keep_found, pixel_box, query_text
from sedic_plugins.grounders.groundingdino_py import GroundingDinoPyGrounder
from sedic_plugins.segmenters.sam import Sam2Segmenter, SamSegmenter
from sedic_plugins.describers.vllm_engine import VllmDescriber

from sedic_kit.errors import ModelNotFoundError, SedicError
from sedic_kit.imaging import load_image
from sedic_kit.install import install_hint
from sedic_kit.model_files import check
from sedic_kit.payload import Payload, SemanticObject, SourceImage


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture
def source():
    return load_image(Image.new("RGB", (96, 64), (200, 30, 30)))


# -- shared grounding / mask post-processing -------------------------------------------------
def test_query_text_and_pixel_box():
    assert query_text("  Red  Car. ") == "red car."
    assert pixel_box((-5.2, 3.4, 99.1, 70.0), 96, 64) == (0, 3, 96, 64)
    assert pixel_box((95.9, 63.9, 96.0, 64.0), 96, 64) == (95, 63, 96, 64)


def test_keep_found_drops_hallucinations_and_keeps_best_box():
    payload = Payload(96, 64, "c", [SemanticObject("cat"), SemanticObject("unicorn"), SemanticObject("dog")])
    dets = [
        [Detection((0, 0, 10, 10), 0.5, 0.4), Detection((20, 20, 40, 40), 0.9, 0.6)],
        [Detection((0, 0, 96, 64), 0.29, 0.9)],  # below box_threshold: hallucination
        [Detection((1, 1, 5, 5), 0.8, 0.2)],  # name tokens below text_threshold: hallucination
    ]
    out = keep_found(payload, dets, GroundingOptions())
    assert [(o.name, o.box, o.score) for o in out.objects] == [("cat", (20, 20, 40, 40), 0.9)]
    with pytest.raises(ValueError):
        keep_found(payload, dets[:2], GroundingOptions())


def test_best_of_multimask_and_fallback():
    masks = np.zeros((3, 64, 96), bool)
    masks[1, 10:20, 10:20] = True
    mask, score = best_of_multimask(masks, np.array([0.1, 0.8, 0.5]))
    assert score == 0.8 and mask.sum() == 100
    payload = Payload(96, 64, "", [SemanticObject("a", box=(10, 10, 20, 20)), SemanticObject("b", box=(50, 5, 200, 30))])
    assert prompt_boxes(payload) == [(10, 10, 20, 20), (50, 5, 96, 30)]
    out = with_masks(payload, [(masks, np.array([0.1, 0.8, 0.5])), (masks, np.array([0.9, 0.1, 0.1]))])
    assert out.objects[0].mask.sum() == 100
    assert out.objects[1].mask.sum() == (96 - 50) * 25  # best candidate empty: the box
    with pytest.raises(ValueError):
        best_of_multimask(masks, np.array([0.1, 0.2]))


# -- vllm ------------------------------------------------------------------------------------
def test_vllm_plugin_without_vllm_is_one_line():
    d = VllmDescriber()
    assert [m.spec for m in d.required_models()] == ["llava-hf/llava-1.5-7b-hf"]
    if installed("vllm"):
        pytest.skip("vllm is installed: the missing-package message does not apply")
    with pytest.raises(SedicError) as info:
        d.engine()
    assert str(info.value) == f"describer 'vllm' needs vllm which is not installed: {install_hint('vllm')}"


@pytest.mark.skipif(not installed("vllm"), reason="vllm is not installed (it needs a GPU and its own torch: see README)")
def test_vllm_engine_on_tiny_llava(tmp_path, monkeypatch, source):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vllm needs a CUDA GPU")
    monkeypatch.setenv("SEDIC_CACHE", str(tmp_path))
    d = VllmDescriber(model="tiny/llava", max_new_tokens=32, max_model_len=1024, gpu_memory_utilization=0.3)
    first, second = d.describe(source), d.describe(source)
    assert (first.caption, first.objects) == (second.caption, second.objects)
    free, total = torch.cuda.mem_get_info()
    d.release()  # the engine shut down: its pool (0.3 of the card) is back with the driver
    assert torch.cuda.mem_get_info()[0] - free > 0.25 * total
    third = d.describe(source)  # on a new engine
    assert (third.caption, third.objects) == (first.caption, first.objects)


def test_tiny_llava_is_in_the_layout_vllm_loads():
    """vllm's llava loader names its modules vision_tower.vision_model.*, language_model.model.*,
    language_model.lm_head and multi_modal_projector.* (it maps transformers' model.* names to
    these); transformers must load the same file with no missing or unexpected weight."""
    pytest.importorskip("transformers")
    from safetensors import safe_open
    from transformers import LlavaForConditionalGeneration

    from sedic_kit.model_files import tiny_path

    path = tiny_path("llava")
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    vllm_modules = ("vision_tower.vision_model.", "language_model.model.", "language_model.lm_head.", "multi_modal_projector.")
    assert keys and all(k.startswith(vllm_modules) for k in keys), [k for k in keys if not k.startswith(vllm_modules)]
    _, info = LlavaForConditionalGeneration.from_pretrained(path, output_loading_info=True)
    assert not any(info.values()), info


# -- segment-anything / sam2 / groundingdino-py ------------------------------------------------
def test_missing_checkpoints_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SEDIC_CACHE", str(tmp_path))
    spec = SamSegmenter(model_type="vit_b").required_models()[0]
    status = check(spec)
    assert not status.present and status.location.endswith("models/sam_vit_b_01ec64.pth")
    assert "sam_vit_b_01ec64.pth" in status.problem and "\n" not in status.problem
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "sam_vit_b_01ec64.pth").write_bytes(b"x" * 10)
    assert check(spec).present and check(spec).size == 10
    sam2 = Sam2Segmenter(variant="tiny").required_models()[0]
    assert (sam2.spec, sam2.needs) == ("facebook/sam2.1-hiera-tiny", (("sam2.1_hiera_tiny.pt",),))
    dino = GroundingDinoPyGrounder().required_models()[0]
    assert dino.spec == "ShilongLiu/GroundingDINO" and dino.needs == (("groundingdino_swinb_cogcoor.pth",),)


@pytest.mark.parametrize(
    ("plugin", "module", "extra"),
    [(SamSegmenter, "segment_anything", "sam"), (Sam2Segmenter, "sam2", "sam2"), (GroundingDinoPyGrounder, "groundingdino", "groundingdino")],
)
def test_missing_packages_are_one_line(plugin, module, extra):
    if not plugin.missing_requirements():
        pytest.skip(f"{module} and its requirements are installed")
    with pytest.raises(SedicError, match=rf"needs .* which is not installed: ") as info:
        plugin.check_available()
    assert str(info.value).endswith(f": {install_hint(extra)}") and f"[{extra}]'" in str(info.value)


def test_groundingdino_py_missing_checkpoint(tmp_path, monkeypatch, source):
    if GroundingDinoPyGrounder.missing_requirements():
        pytest.skip("groundingdino-py is not installed (it needs transformers < 5: its own environment, see README)")
    g = GroundingDinoPyGrounder(checkpoint=str(tmp_path / "nope.pth"))
    with pytest.raises(ModelNotFoundError, match="nope.pth does not exist"):
        g.ground(source, Payload(96, 64, "", [SemanticObject("a")]))


class RecordingPredictor:
    """Speaks the SamPredictor / SAM2ImagePredictor API (set_image, predict(box=, multimask_output=)):
    the real packages need a torchvision that cannot load beside the CPU torch here."""

    def __init__(self) -> None:
        self.boxes: list[np.ndarray] = []

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def predict(self, box: np.ndarray, multimask_output: bool) -> tuple[np.ndarray, np.ndarray, None]:
        assert multimask_output
        self.boxes.append(box)
        h, w = self.shape
        masks = np.zeros((3, h, w), dtype=np.float32)
        x0, y0, x1, y1 = np.asarray(box).reshape(-1)[:4].astype(int)
        masks[1, y0:y1, x0:x1] = 1.0
        masks[2, :, :] = 1.0
        return masks, np.array([0.2, 0.9, 0.5]), None


@pytest.mark.parametrize(("plugin", "box_shape"), [("sam", (4,)), ("sam2", (1, 4))])
def test_official_sam_segmenters_prompt_with_boxes_and_keep_the_best_mask(plugin: str, box_shape: tuple[int, ...]) -> None:
    segmenter = {"sam": SamSegmenter, "sam2": Sam2Segmenter}[plugin]()
    predictor = RecordingPredictor()
    segmenter._predictor = predictor
    payload = Payload(32, 24, "", [SemanticObject("a", box=(4, 4, 12, 10)), SemanticObject("b", box=(20, 2, 30, 20))])
    out = segmenter.segment(SourceImage(Image.new("RGB", (32, 24))), payload)
    assert [b.shape for b in predictor.boxes] == [box_shape, box_shape]
    assert [int(o.mask.sum()) for o in out.objects] == [8 * 6, 10 * 18]
    assert all(o.mask.dtype == bool for o in out.objects)
