"""Full-size layouts kept proven on the meta device (no weights, seconds): every model-backed plugin's
architecture from its published config, its key names and shapes through the config round trip its
loader makes, DiffBIR v2's checkpoint layout through the converter, LLaVA's published key layout.
``benchmarks/full_size_layouts.py`` does the same with real files of random weights."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from sedic_plugins.shared import full_size  # noqa: E402

LOADERS = {  # the class each plugin's loader builds from the saved config.json
    "llava-hf/llava-1.5-7b-hf": "transformers.AutoModelForImageTextToText",
    "facebook/sam-vit-huge": "transformers.SamModel",
    "IDEA-Research/grounding-dino-base": "transformers.AutoModelForZeroShotObjectDetection",
    "sd15-text": "transformers.CLIPTextModel",
    "sd21-text": "transformers.CLIPTextModel",
    "sd15-unet": "diffusers.UNet2DConditionModel",
    "sd21-unet": "diffusers.UNet2DConditionModel",
    "sd15-vae": "diffusers.AutoencoderKL",
    "sd15-controlnet": "diffusers.ControlNetModel",
    "taesd": "diffusers.AutoencoderTiny",
}


def shapes(model: object) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_saved_config_rebuilds_the_same_keys_and_shapes(name: str) -> None:
    """What ``save_pretrained`` writes as config.json rebuilds, through the loader's class, the same tensors."""
    import diffusers

    model = full_size.on_meta(full_size.builders()[name])
    module, cls_name = LOADERS[name].split(".")
    cls = getattr(transformers if module == "transformers" else diffusers, cls_name)
    if module == "transformers":
        config = transformers.AutoConfig.for_model(**json.loads(model.config.to_json_string()))
        rebuilt = full_size.on_meta(lambda: cls.from_config(config) if cls_name.startswith("Auto") else cls(config))
    else:
        config = json.loads(json.dumps(dict(model.config)))  # tuples become lists, as in config.json
        rebuilt = full_size.on_meta(lambda: cls.from_config(config))
    assert shapes(rebuilt) == shapes(model)


def test_diffbir_v2_checkpoint_layout_converts_to_every_tensor_of_the_ircontrolnet() -> None:
    from sedic_plugins.restorers.orag.ircontrolnet import diffbir_state_dict, from_diffbir

    with torch.device("meta"):
        unet = full_size.sd_unet("sd21")
        model = full_size.controlnet("ircontrolnet")
        state = diffbir_state_dict(model)
        assert state["input_blocks.0.0.weight"].shape == (320, 8, 3, 3)  # [z_t, cf]
        assert {k.split(".")[0] for k in state} == {"input_blocks", "zero_convs", "middle_block", "middle_block_out", "time_embed"}
        converted = from_diffbir(state, unet)
    assert shapes(converted) == shapes(model)
    assert sum(p.numel() for p in converted.parameters()) == 363_153_280


def test_llava_published_layout_is_the_one_vllm_reads() -> None:
    from sedic_plugins.describers.hf_transformers import published_llava_key

    model = full_size.on_meta(full_size.builders()["llava-hf/llava-1.5-7b-hf"])
    keys = {published_llava_key(k) for k in model.state_dict()}
    assert {k.split(".")[0] for k in keys} == {"language_model", "vision_tower", "multi_modal_projector"}
    assert "language_model.lm_head.weight" in keys and "language_model.model.embed_tokens.weight" in keys
    assert all(k.startswith("vision_tower.vision_model.") for k in keys if k.startswith("vision_tower."))
    assert model.state_dict()["model.language_model.embed_tokens.weight"].shape == (32064, 4096)
