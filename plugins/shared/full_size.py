"""Full-size architectures of the models the plugins load, built from their published configs.

Used on the meta device (no memory) for the GPU memory plan's parameter counts and the layout
test, and with random weights by ``benchmarks/full_size_layouts.py``. The configs are the values
of the published ``config.json`` files (LLaVA-1.5-7B: llava-hf/llava-1.5-7b-hf; SAM: facebook/sam-vit-*;
Grounding DINO: IDEA-Research/grounding-dino-*; SD: :mod:`sedic_plugins.restorers.orag.configs`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

SAM_VISION: dict[str, dict[str, Any]] = {  # facebook/sam-vit-{huge,large,base}/config.json, vision_config
    "facebook/sam-vit-huge": {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16, "global_attn_indexes": [7, 15, 23, 31]},
    "facebook/sam-vit-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "global_attn_indexes": [5, 11, 17, 23]},
    "facebook/sam-vit-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "global_attn_indexes": [2, 5, 8, 11]},
}
SWIN: dict[str, dict[str, Any]] = {  # IDEA-Research/grounding-dino-{base,tiny}/config.json, backbone_config
    "IDEA-Research/grounding-dino-base": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 12, "image_size": 384},
    "IDEA-Research/grounding-dino-tiny": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7, "image_size": 224},
}


def llava_config() -> Any:
    """llava-hf/llava-1.5-7b-hf: Vicuna-7B (LLaMA) + CLIP ViT-L/14-336, 32064 tokens."""
    import transformers

    return transformers.LlavaConfig(
        text_config=transformers.LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32064),
        vision_config=transformers.CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768),
        image_token_index=32000,
    )


def sam_config(repo: str) -> Any:
    import transformers

    return transformers.SamConfig(vision_config=transformers.SamVisionConfig(**SAM_VISION[repo]))


def dino_config(repo: str) -> Any:
    import transformers

    swin = transformers.SwinConfig(**{**SWIN[repo], "out_indices": [2, 3, 4], "out_features": ["stage2", "stage3", "stage4"]})
    return transformers.GroundingDinoConfig(backbone_config=swin)


def sd_unet(family: str) -> Any:
    from diffusers import UNet2DConditionModel

    from ..restorers.orag.configs import unet_config

    return UNet2DConditionModel(**unet_config("full", family))  # type: ignore[arg-type]


def sd_parts(family: str) -> dict[str, Callable[[], Any]]:
    """Builders of an SD family's UNet, VAE and text encoder (CLIP ViT-L/14 or OpenCLIP ViT-H/14 text)."""
    import transformers
    from diffusers import AutoencoderKL

    from ..restorers.orag.configs import text_config, vae_config

    return {
        f"{family}-unet": lambda: sd_unet(family),
        f"{family}-vae": lambda: AutoencoderKL(**vae_config("full")),
        f"{family}-text": lambda: transformers.CLIPTextModel(transformers.CLIPTextConfig(**text_config("full", 49408, family))),  # type: ignore[arg-type]
    }


def controlnet(kind: str) -> Any:
    """``tile``: lllyasviel's SD1.5 tile ControlNet (image hint); ``ircontrolnet``: DiffBIR v2 on SD2.1."""
    from diffusers import ControlNetModel

    from ..restorers.orag.configs import controlnet_embedding
    from ..restorers.orag.ircontrolnet import IRControlNetModel

    if kind == "tile":
        return ControlNetModel.from_unet(sd_unet("sd15"), **controlnet_embedding("image", "full"))
    return IRControlNetModel.from_unet(sd_unet("sd21"), conditioning_channels=4, load_weights_from_unet=False)


def builders() -> dict[str, Callable[[], Any]]:
    """Every full-size model by the name the memory plan uses."""
    import transformers

    from ..restorers.orag.tiny import random_tiny_vae

    out: dict[str, Callable[[], Any]] = {"llava-hf/llava-1.5-7b-hf": lambda: transformers.LlavaForConditionalGeneration(llava_config())}
    out.update({repo: (lambda r=repo: transformers.SamModel(sam_config(r))) for repo in SAM_VISION})  # type: ignore[misc]
    out.update({repo: (lambda r=repo: transformers.GroundingDinoForObjectDetection(dino_config(r))) for repo in SWIN})  # type: ignore[misc]
    out.update(sd_parts("sd15"))
    out.update(sd_parts("sd21"))
    out["sd15-controlnet"] = lambda: controlnet("tile")
    out["sd21-ircontrolnet"] = lambda: controlnet("ircontrolnet")
    out["taesd"] = lambda: random_tiny_vae("full")
    return out


def on_meta(build: Callable[[], Any]) -> Any:
    """``build()`` on the meta device: the real shapes, no memory."""
    import torch

    with torch.device("meta"):
        return build()


@cache
def parameter_count(name: str) -> int:
    """Parameters of the full-size model ``name``, counted on the meta device."""
    model = on_meta(builders()[name])
    return sum(p.numel() for p in model.parameters())
