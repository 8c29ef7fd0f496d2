"""Random SD1.5 / SD2.1 components: tiny models for tests (``tiny/sd15``, ``tiny/sd15-tile``,
``tiny/sd15-latent``, ``tiny/sd21`` in the hub layouts; ``tiny/diffbir-v2``, an IRControlNet for
``tiny/sd21`` in DiffBIR's checkpoint layout; ``tiny/sd15-lora``, ``tiny/sd21-lora``, few-step
LoRAs in the published file (``pytorch_lora_weights.safetensors``) with diffusers' peft keys, while
LCM-LoRA's own kohya keys are tested in tests/test_lora_layouts.py; ``tiny/taesd``, a tiny
autoencoder in TAESD's diffusers layout) and full-size ones for the cost benchmark."""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sedic_kit.models import register_tiny

from ...shared.hf import quiet_transformers
from .configs import SCHEDULER_CONFIG, Family, Scale, controlnet_embedding, text_config, tiny_vae_config, unet_config, vae_config

if TYPE_CHECKING:
    from diffusers import ControlNetModel, UNet2DConditionModel

    from .components import SD15
    from .ircontrolnet import IRControlNetModel


def byte_tokenizer():  # type: ignore[no-untyped-def]
    """A CLIP BPE tokenizer over single bytes (no merges): any text tokenizes, tiny vocabulary.

    Written as vocab.json + merges.txt (the SD1.5 tokenizer files) and loaded from there.
    """
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.json").write_text(json.dumps(vocab))
        Path(tmp, "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=77)


def random_unet(scale: Scale, seed: int = 0, family: Family = "sd15") -> UNet2DConditionModel:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**unet_config(scale, family))


def random_controlnet(unet: UNet2DConditionModel, control: Literal["image", "latent"], scale: Scale, seed: int = 1) -> ControlNetModel:
    """A ControlNet initialised from ``unet``; its zero convolutions get small random weights so
    that the condition actually changes the output (a trained ControlNet's would)."""
    import torch
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(unet, **controlnet_embedding(control, scale))
    gen = torch.Generator().manual_seed(seed)
    zero_convs = [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for conv in zero_convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * 0.05)
    return net


def random_irc(unet: UNet2DConditionModel, seed: int = 1) -> IRControlNetModel:
    """An IRControlNet for ``unet`` with small random zero convolutions (as a trained one's)."""
    import torch

    from .ircontrolnet import IRControlNetModel

    torch.manual_seed(seed)
    net = IRControlNetModel.from_unet(unet, conditioning_channels=4)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * 0.05)
    return net


def random_tiny_vae(scale: Scale, seed: int = 4) -> Any:
    """A randomly initialised TAESD (``AutoencoderTiny``)."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny(**tiny_vae_config(scale))


def random_sd15(scale: Scale, control: Literal["image", "latent"] = "image", family: Family = "sd15", tiny_vae: bool = False) -> SD15:
    """Randomly initialised components of SD1.5 (or SD2.1) + ControlNet (+ TAESD), in memory (fp32, CPU)."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    from .components import SD15

    tokenizer = byte_tokenizer()
    unet = random_unet(scale, family=family)
    torch.manual_seed(2)
    vae = AutoencoderKL(**vae_config(scale))
    vocab = 49408 if scale == "full" else len(tokenizer)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config(scale, vocab, family), **ids))
    controlnet = random_irc(unet) if family == "sd21" else random_controlnet(unet, control, scale)
    parts = SD15(tokenizer, text_encoder, vae, unet, controlnet, dict(SCHEDULER_CONFIG), tiny_vae=random_tiny_vae(scale) if tiny_vae else None)
    parts.freeze()
    return parts


@quiet_transformers()  # built by `models check` and `run`'s weight check too: no shard bars, no backend notices
def save_pipeline(directory: Path, family: Family) -> None:
    """The SD1.5 / SD2.1 repository layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    parts = random_sd15("tiny", family=family)
    pipe: Any = StableDiffusionPipeline(  # diffusers' save_pretrained is invisible to mypy
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        tokenizer=parts.tokenizer,
        unet=parts.unet,
        scheduler=PNDMScheduler.from_config(SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)


@register_tiny("sd15")
def build_tiny_sd15(directory: Path) -> None:
    save_pipeline(directory, "sd15")


@register_tiny("sd21")
def build_tiny_sd21(directory: Path) -> None:
    save_pipeline(directory, "sd21")


@register_tiny("diffbir-v2")
def build_tiny_diffbir(directory: Path) -> None:
    """``v2.pth`` for ``tiny/sd21``: an IRControlNet state dict in DiffBIR's key layout, as published."""
    import torch

    from .ircontrolnet import diffbir_state_dict

    torch.save(diffbir_state_dict(random_irc(random_unet("tiny", family="sd21"))), directory / "v2.pth")


@register_tiny("sd15-tile")
def build_tiny_tile(directory: Path) -> None:
    """An image-conditioned ControlNet for ``tiny/sd15`` (the layout of lllyasviel/control_v11f1e_sd15_tile)."""
    controlnet: Any = random_controlnet(random_unet("tiny"), "image", "tiny")
    controlnet.save_pretrained(directory)


@register_tiny("sd15-latent")
def build_tiny_latent(directory: Path) -> None:
    """A latent-conditioned ControlNet for ``tiny/sd15`` (4 condition channels at latent resolution)."""
    controlnet: Any = random_controlnet(random_unet("tiny"), "latent", "tiny")
    controlnet.save_pretrained(directory)


@register_tiny("taesd")
def build_tiny_taesd(directory: Path) -> None:
    """A tiny autoencoder in madebyollin/taesd's diffusers layout (config.json + safetensors)."""
    random_tiny_vae("tiny").save_pretrained(directory)


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1", "conv2", "time_emb_proj")
"""UNet layers the tiny LoRAs adapt: attention, feed-forward, resnet convolutions (as LCM-LoRA does)."""


def save_random_lora(directory: Path, family: Family, seed: int = 3, rank: int = 2) -> None:
    """A random LoRA for the tiny UNet of ``family``, saved as diffusers' LoRA training scripts do
    (peft adapter -> ``get_peft_model_state_dict`` -> ``save_lora_weights``): the file and key layout
    (``unet.<module>.lora_A/B.weight``) ``load_lora_weights`` reads. Its up-projections are random
    (peft starts them at zero)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet: Any = random_unet("tiny", family=family)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(LORA_TARGETS), init_lora_weights="gaussian"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    StableDiffusionPipeline.save_lora_weights(directory, unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True)


for _family in ("sd15", "sd21"):  # tiny/sd15-lora (for LCM-LoRA's file), tiny/sd21-lora (for TCD's)
    register_tiny(f"{_family}-lora")(partial(save_random_lora, family=_family))
