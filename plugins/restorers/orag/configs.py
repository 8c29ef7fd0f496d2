"""Architectures of SD1.5, SD2.1-base and their ControlNets as diffusers/transformers configs.

``full`` is the real layout (used by the cost benchmark with random weights: weights do not
change cost); ``tiny`` keeps the same block structure (four resolutions, cross-attention in the
middle of the up branch, a VAE that downsamples by 8) with a few channels, for tests.
"""

from __future__ import annotations

from typing import Any, Literal

Scale = Literal["full", "tiny"]
Family = Literal["sd15", "sd21"]

SCHEDULER_CONFIG: dict[str, Any] = {
    # SD1.5's scheduler/scheduler_config.json (PNDM); the sampler builds its own class from it.
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}


def unet_config(scale: Scale, family: Family = "sd15") -> dict[str, Any]:
    """SD2.1 differs from SD1.5 by OpenCLIP's 1024-d context, 64-channel heads (diffusers' historic
    ``attention_head_dim`` holds the head count) and linear projections in its transformers."""
    if family == "sd21":
        base = unet_config(scale)
        if scale == "full":
            return {**base, "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20), "use_linear_projection": True}
        return {**base, "attention_head_dim": (1, 2, 2, 2), "use_linear_projection": True}
    if scale == "full":
        return {
            "sample_size": 64,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        }
    # no attention at the full latent resolution keeps tiny runs fast at Kodak size
    return {
        "sample_size": 8,
        "cross_attention_dim": 16,
        "attention_head_dim": 2,
        "block_out_channels": (8, 16, 16, 16),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    }


def vae_config(scale: Scale) -> dict[str, Any]:
    common = {
        "latent_channels": 4,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "scaling_factor": 0.18215,
    }
    if scale == "full":
        return {**common, "sample_size": 512, "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2}
    return {
        **common,
        "sample_size": 64,
        "block_out_channels": (4, 8, 8, 8),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "mid_block_add_attention": False,
    }


def tiny_vae_config(scale: Scale) -> dict[str, Any]:
    """TAESD (``AutoencoderTiny``): diffusers' defaults are madebyollin/taesd's architecture."""
    if scale == "full":
        return {}
    return {"encoder_block_out_channels": (4,) * 4, "decoder_block_out_channels": (4,) * 4,
            "num_encoder_blocks": (1, 1, 1, 1), "num_decoder_blocks": (1, 1, 1, 1)}


def text_config(scale: Scale, vocab_size: int, family: Family = "sd15") -> dict[str, Any]:
    """CLIP ViT-L/14's text tower (SD1.5) or OpenCLIP ViT-H/14's without its last layer (SD2.1)."""
    common = {"vocab_size": vocab_size, "max_position_embeddings": 77, "hidden_act": "quick_gelu"}
    if family == "sd21":
        common["hidden_act"] = "gelu"
        if scale == "full":
            return {**common, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16, "projection_dim": 512}
    if scale == "full":
        return {**common, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12, "projection_dim": 768}
    return {**common, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "projection_dim": 16}


def controlnet_embedding(control: Literal["image", "latent"], scale: Scale) -> dict[str, Any]:
    """``ControlNetModel.from_unet`` arguments: an image hint (downsampled by 8) or a VAE latent (as is)."""
    if control == "latent":
        return {"conditioning_channels": 4, "conditioning_embedding_out_channels": (64,) if scale == "full" else (8,)}
    return {"conditioning_channels": 3, "conditioning_embedding_out_channels": (16, 32, 96, 256) if scale == "full" else (4, 4, 8, 8)}
