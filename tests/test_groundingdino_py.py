"""The ``groundingdino-py`` grounder on a tiny random model in the official format, and offline.

Its equivalence with ``grounding-dino`` is in ``test_grounding_equivalence.py``. Tests that load
groundingdino skip where it is not installed (it needs transformers < 5: CI stage 2b).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import importable, synthetic_image
from sedic_kit.cli import app
from sedic_kit.errors import ModelNotFoundError, SedicError
from sedic_kit.payload import Payload, SemanticObject, SourceImage
from sedic_plugins.grounders.groundingdino_py import CHECKPOINT_REPO, PACKAGED_TEXT_ENCODER, VARIANTS, GroundingDinoPyGrounder

needs_groundingdino = pytest.mark.skipif(
    not importable("groundingdino.models"), reason="needs groundingdino-py (transformers < 5: CI stage 2b, see README)"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from groundingdino_tiny import tiny_groundingdino_py

    return tiny_groundingdino_py(tmp_path_factory.mktemp("groundingdino-py"))


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    hub = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    return hub


def one_line(fn: Any, error: type[Exception] = SedicError) -> str:
    with pytest.raises(error) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_required_models_name_the_text_encoder_the_packaged_configs_download() -> None:
    specs = GroundingDinoPyGrounder(variant="swint-ogc").required_models()
    assert [(s.what, s.spec) for s in specs] == [("grounder.variant", CHECKPOINT_REPO), ("grounder.text_encoder", PACKAGED_TEXT_ENCODER)]
    assert specs[0].needs == (("groundingdino_swint_ogc.pth",),) and ("tokenizer.json", "vocab.txt") in specs[1].needs
    own = GroundingDinoPyGrounder(checkpoint="/models/ft.pth", text_encoder="/models/bert").required_models()
    assert [(s.what, s.spec) for s in own] == [("grounder.checkpoint", "/models/ft.pth"), ("grounder.text_encoder", "/models/bert")]


def test_models_check_lists_the_text_encoder(empty_hf_cache: Path) -> None:
    result = CliRunner().invoke(app, ["models", "check", "lite", "--set", "grounder.plugin=groundingdino-py"])
    assert result.exit_code == 1, result.output
    assert f"missing  grounder.variant = {CHECKPOINT_REPO} (grounder 'groundingdino-py')" in result.output
    assert f"missing  grounder.text_encoder = {PACKAGED_TEXT_ENCODER} (grounder 'groundingdino-py')" in result.output
    assert "sedic-kit models pull lite --set grounder.plugin=groundingdino-py" in result.output


@needs_groundingdino
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_packaged_configs_name_the_listed_text_encoder(variant: str) -> None:
    grounder = GroundingDinoPyGrounder(variant=variant)
    assert grounder.config_args().text_encoder_type == PACKAGED_TEXT_ENCODER == grounder.required_models()[1].spec


@needs_groundingdino
def test_offline_text_encoder_is_one_line(tmp_path: Path, empty_hf_cache: Path) -> None:
    checkpoint = tmp_path / "ft.pth"
    checkpoint.write_bytes(b"never read: the text encoder is looked up first")
    grounder = GroundingDinoPyGrounder(checkpoint=str(checkpoint), device="cpu")
    msg = one_line(lambda: grounder.ground(SourceImage(synthetic_image()), Payload(96, 64, "", [SemanticObject("a")])), ModelNotFoundError)
    assert msg.startswith(f"grounder.text_encoder: model '{PACKAGED_TEXT_ENCODER}' (config.json, ")
    assert f"is not in the Hugging Face cache {empty_hf_cache}" in msg and "sedic-kit models pull" in msg


@needs_groundingdino
def test_tiny_model_loads_through_the_config_option_and_grounds(tiny: dict[str, Any]) -> None:
    source = SourceImage(synthetic_image(150, 100, seed=4))
    payload = Payload(150, 100, "", [SemanticObject("red car", "a car"), SemanticObject("the yellow disc")])
    grounder = GroundingDinoPyGrounder(**tiny, box_threshold=0.0, text_threshold=0.0)
    assert [s.spec for s in grounder.required_models()] == [tiny["checkpoint"], str(Path(tiny["config"]).parent / "bert")]
    out = grounder.ground(source, payload)
    assert [o.name for o in out.objects] == ["red car", "the yellow disc"] and out.objects[0].details == "a car"
    for obj in out.objects:
        assert obj.box is not None and 0 <= obj.box[0] < obj.box[2] <= 150 and 0 <= obj.box[1] < obj.box[3] <= 100
        assert obj.score is not None and 0 < obj.score < 1
    again = GroundingDinoPyGrounder(**tiny, box_threshold=0.0, text_threshold=0.0).ground(source, payload)
    assert [(o.box, o.score) for o in again.objects] == [(o.box, o.score) for o in out.objects]  # deterministic
    none = GroundingDinoPyGrounder(**tiny, box_threshold=1.0).ground(source, payload)
    assert none.objects == []


@needs_groundingdino
def test_checkpoint_that_does_not_fit_the_config_is_one_line(tiny: dict[str, Any], tmp_path: Path) -> None:
    import torch

    state = torch.load(tiny["checkpoint"])["model"]
    partial = tmp_path / "partial.pth"
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("transformer.decoder.")}}, partial)
    grounder = GroundingDinoPyGrounder(**{**tiny, "checkpoint": str(partial)})
    msg = one_line(lambda: grounder.model())
    assert msg.startswith(f"grounder.checkpoint: {partial} lacks ") and "first: transformer.decoder." in msg and "grounder.config" in msg
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>not a checkpoint</html>")
    msg = one_line(lambda: GroundingDinoPyGrounder(**{**tiny, "checkpoint": str(garbage)}).model())
    assert msg.startswith(f"grounder.checkpoint: cannot load {garbage} as a groundingdino checkpoint (UnpicklingError: ")
    torch.save({"state_dict": state}, garbage)
    msg = one_line(lambda: GroundingDinoPyGrounder(**{**tiny, "checkpoint": str(garbage)}).model())
    assert msg == f"grounder.checkpoint: cannot load {garbage} as a groundingdino checkpoint (KeyError: 'model')"


@needs_groundingdino
def test_bad_config_files_are_one_line(tmp_path: Path) -> None:
    missing = GroundingDinoPyGrounder(config=str(tmp_path / "nope.py"))
    assert one_line(missing.required_models, ModelNotFoundError) == f"grounder.config: {tmp_path / 'nope.py'} does not exist"
    broken = tmp_path / "broken.py"
    broken.write_text("hidden_dim = (\n")
    msg = one_line(GroundingDinoPyGrounder(config=str(broken)).required_models)
    assert msg.startswith(f"grounder.config: cannot read {broken} (SyntaxError: ")
    broken.write_text("hidden_dim = undefined_name\n")
    msg = one_line(GroundingDinoPyGrounder(config=str(broken)).required_models)
    assert msg == f"grounder.config: cannot read {broken} (NameError: name 'undefined_name' is not defined)"
