"""transformers-backed plugins end to end with tiny random models (built from configs, loaded via from_pretrained)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs transformers (the [transformers] extra)")

from sedic_plugins.grounders.grounding_dino import GroundingDinoGrounder
from sedic_plugins.describers.hf_transformers import TransformersDescriber
from sedic_plugins.segmenters.sam import SamHFSegmenter

from sedic_kit import Codec
from sedic_kit.cli import main
from sedic_kit.errors import ModelNotFoundError, SedicError
from sedic_kit.imaging import load_image
from sedic_kit.install import install_hint
from sedic_kit.model_files import resolve
from sedic_kit.payload import Payload, SemanticObject
from sedic_kit.profiles import load_profile
from sedic_kit.roles import Role

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "kodim23.png"  # 768 x 512


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One tiny-model cache for the module (built once from configs)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SEDIC_CACHE", str(tmp_path_factory.mktemp("sedic-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def source():
    return load_image(EXAMPLE)


@pytest.fixture(scope="module")
def grounder(cache):
    return GroundingDinoGrounder(model="tiny/grounding-dino", device="cpu", box_threshold=0.0, text_threshold=0.0)


def test_tiny_llava_has_the_right_number_of_image_tokens(cache):
    from PIL import Image
    from transformers import AutoConfig, AutoProcessor

    path = resolve("tiny/llava", "describer.model")
    config, processor = AutoConfig.from_pretrained(path), AutoProcessor.from_pretrained(path)
    prompt = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], add_generation_prompt=True)
    ids = processor(images=Image.new("RGB", (50, 40)), text=prompt, return_tensors="pt")["input_ids"][0]
    assert int((ids == config.image_token_index).sum()) == config.image_seq_length == 16


def test_transformers_describer_gibberish_is_deterministic(cache, source):
    describer = TransformersDescriber(model="tiny/llava", device="cpu", max_new_tokens=24)
    first, second = describer.describe(source), describer.describe(source)
    assert (first.caption, first.objects) == (second.caption, second.objects) == ("", [])
    assert "gave no usable description" in source.notes[-1]


def test_grounder_keeps_best_box_per_object(grounder, source):
    payload = Payload(768, 512, "c", [SemanticObject("red bird"), SemanticObject("tree")])
    found = grounder.ground(source, payload)
    assert [o.name for o in found.objects] == ["red bird", "tree"]
    detections = grounder.detect(source, ["red bird", "tree"])
    for obj, dets in zip(found.objects, detections):
        best = max(d.score for d in dets)
        assert obj.score == pytest.approx(best)
        x0, y0, x1, y1 = obj.box
        assert 0 <= x0 < x1 <= 768 and 0 <= y0 < y1 <= 512
    assert grounder.ground(source, payload.with_objects([])).objects == []


def test_hallucinated_object_is_removed(grounder, source):
    names = ["red bird", "green tree", "zebra"]
    # The tiny model is random but deterministic: make "zebra" the object the detector cannot find
    # by putting text_threshold between its best name score and the others'.
    best = {n: max(d.name_score for d in dets) for n, dets in zip(names, grounder.detect(source, names))}
    weakest = min(best, key=best.get)
    others = min(v for n, v in best.items() if n != weakest)
    assert others - best[weakest] > 1e-4
    strict = GroundingDinoGrounder(
        model="tiny/grounding-dino", device="cpu", box_threshold=0.0, text_threshold=(others + best[weakest]) / 2
    )
    payload = Payload(768, 512, "c", [SemanticObject(n, f"details of {n}") for n in names])
    kept = strict.ground(source, payload)
    assert [o.name for o in kept.objects] == [n for n in names if n != weakest]
    assert weakest not in kept.texts()
    none = GroundingDinoGrounder(model="tiny/grounding-dino", device="cpu", box_threshold=1.0).ground(source, payload)
    assert none.objects == []


def test_sam_hf_masks_from_boxes(cache, source):
    segmenter = SamHFSegmenter(model="tiny/sam", device="cpu")
    payload = Payload(768, 512, "c", [SemanticObject("a", box=(100, 50, 400, 300)), SemanticObject("b")])
    out = segmenter.segment(source, payload)
    again = segmenter.segment(source, payload)
    for obj, obj2 in zip(out.objects, again.objects):
        assert obj.mask.shape == (512, 768) and obj.mask.dtype == bool and obj.mask.any()
        assert np.array_equal(obj.mask, obj2.mask)
    assert out.objects[1].box == (0, 0, 768, 512)


def test_tiny_profile_end_to_end(cache, tmp_path):
    codec = Codec.from_profile("tiny", describer={"max_new_tokens": 16})
    result = codec.encode(EXAMPLE)
    image = codec.decode(result.save(tmp_path / "a.sedic"))
    assert image.size == (768, 512) and result.bpp < 0.05
    assert result.payload.objects == []  # a random LLaVA writes gibberish: coded without a description
    # The grounder and segmenter of the profile on real objects (sidecar description of the example).
    codec = Codec.from_profile("tiny", overrides=["describer.plugin=sidecar"])
    result = codec.encode(EXAMPLE)
    decoded = codec.decode_detailed(result.save(tmp_path / "b.sedic"))
    assert decoded.image.size == (768, 512)
    assert [o.name for o in decoded.payload.objects] == [o.name for o in result.payload.objects]
    assert all(o.mask.shape == (512, 768) and o.mask.any() for o in result.payload.objects)
    assert result.total_bits == 8 * (tmp_path / "b.sedic").stat().st_size


def _one_line_error(fn) -> str:
    with pytest.raises(SedicError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_offline_profile_without_weights(cache, source, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    msg = _one_line_error(lambda: Codec.from_profile("offline"))
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert msg.endswith(f"offline.toml: describer.plugin: describer 'vllm' needs vllm which is not installed: {install_hint('vllm')}")
    profile = load_profile("offline")
    grounder = profile.build_role(Role.grounder)
    msg = _one_line_error(lambda: grounder.ground(source, Payload(768, 512, "", [SemanticObject("bird")])))
    assert "grounder.model" in msg and "IDEA-Research/grounding-dino-base" in msg and "models pull" in msg
    segmenter = profile.build_role(Role.segmenter)
    with pytest.raises(ModelNotFoundError, match="facebook/sam-vit-huge"):
        segmenter.segment(source, Payload(768, 512, "", [SemanticObject("bird")]))
    describer = load_profile("offline", ["describer.plugin=transformers", "describer.model=llava-hf/llava-1.5-7b-hf"])
    msg = _one_line_error(lambda: describer.build_role(Role.describer).describe(source))
    assert "llava-hf/llava-1.5-7b-hf" in msg


def test_models_check_cli(cache, tmp_path, monkeypatch, capsys):
    import shutil

    import huggingface_hub.constants

    hub = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    assert main(["models", "check", "tiny", "--files"]) == 0
    text = capsys.readouterr().out
    assert text.count("present") == 5 and "model.safetensors" in text  # llava, grounding-dino, sam, sd15, sd15-tile
    assert main(["models", "check", "offline"]) == 1
    text = capsys.readouterr().out
    for needed in ("llava-hf/llava-1.5-7b-hf", "IDEA-Research/grounding-dino-base", "facebook/sam-vit-huge", "hf-cache"):
        assert needed in text
    # A hub id present in the Hugging Face cache (tiny weights under the real id's cache layout).
    repo = hub / "models--facebook--sam-vit-huge"
    shutil.copytree(resolve("tiny/sam", "x"), repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    assert main(["models", "check", "offline", "--json"]) == 1
    rows = {r.get("model"): r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["facebook/sam-vit-huge"]["status"] == "present" and rows["facebook/sam-vit-huge"]["size"] > 0
    assert rows["llava-hf/llava-1.5-7b-hf"]["status"] == "missing"
    out = load_profile("offline").build_role(Role.segmenter).segment(load_image(EXAMPLE), Payload(768, 512, "", [SemanticObject("b")]))
    assert out.objects[0].mask.shape == (512, 768)
    assert main(["models", "pull", "tiny"]) == 0
