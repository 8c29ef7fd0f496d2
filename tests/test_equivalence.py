"""Each plugin gives the answer of the reference library it wraps, on the same random weights.

No pretrained weights exist on CI machines, so this is the evidence that a plugin is right: the
same tiny random model is run through our plugin and through the library called directly (or
through the other implementation of the same model), and the outputs are compared. Tests whose
library is not installed here skip; the second CI stage (README, "Continuous integration")
installs them all.
"""

from __future__ import annotations

import importlib.util
import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import importable
from tiny_backends import tiny_sam2
from sedic_kit import Codec
from sedic_kit.container import Reader
from sedic_kit.imaging import load_image
from sedic_kit.payload import Payload, SemanticObject


def needs(*modules: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not importable(*modules), reason=f"needs {', '.join(modules)} (second CI stage, see README)")


def textured_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8), "RGB")


# -- CompressAI: the section is model.compress(), decoding is model.decompress() ---------------
COMPRESSAI_CODECS = ("cheng2020-attn", "cheng2020-anchor", "mbt2018", "mbt2018-mean", "bmshj2018-hyperprior")


@pytest.mark.skipif(importlib.util.find_spec("compressai") is None, reason="compressai not installed")
@pytest.mark.parametrize("name", COMPRESSAI_CODECS)
def test_compressai_section_is_compress_and_decode_is_decompress(name: str) -> None:
    import torch

    codec = Codec.from_profile("lite", overrides=[f"reference_codec.plugin={name}"], reference_codec={"pretrained": False})
    plugin = codec.reference_codec
    image = textured_image(77, 50)
    section = plugin.encode(image)

    padded = np.pad(np.asarray(image, dtype=np.float32) / 255, ((0, 64 - 50), (0, 128 - 77), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None]
    model = plugin.model()
    with torch.inference_mode():
        out = model.compress(x)
        (y,), (z,) = out["strings"]
        assert out["shape"] == (1, 2)
        x_hat = model.decompress([[y], [z]], out["shape"])["x_hat"]
    reader = Reader(section)
    assert reader.varint("y length") == len(y)
    assert section[reader.pos :] == y + z

    want = (x_hat[0, :, :50, :77].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(plugin.decode(section, 77, 50)), want)


# -- segment-anything vs transformers SamModel ---------------------------------------------------
def hf_sam_to_segment_anything(state: dict[str, Any]) -> dict[str, Any]:
    """transformers ``SamModel`` weights renamed to segment-anything's ``Sam`` layout."""
    renames = [
        (r"^vision_encoder\.", "image_encoder."),
        (r"^image_encoder\.patch_embed\.projection\.", "image_encoder.patch_embed.proj."),
        (r"^image_encoder\.layers\.(\d+)\.layer_norm(\d)\.", r"image_encoder.blocks.\1.norm\2."),
        (r"^image_encoder\.layers\.", "image_encoder.blocks."),
        (r"\.neck\.conv1\.", ".neck.0."), (r"\.neck\.layer_norm1\.", ".neck.1."),
        (r"\.neck\.conv2\.", ".neck.2."), (r"\.neck\.layer_norm2\.", ".neck.3."),
        (r"^shared_image_embedding\.positional_embedding$", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"),
        (r"\.mask_embed\.conv1\.", ".mask_downscaling.0."), (r"\.mask_embed\.layer_norm1\.", ".mask_downscaling.1."),
        (r"\.mask_embed\.conv2\.", ".mask_downscaling.3."), (r"\.mask_embed\.layer_norm2\.", ".mask_downscaling.4."),
        (r"\.mask_embed\.conv3\.", ".mask_downscaling.6."),
        (r"\.point_embed\.", ".point_embeddings."),
        (r"\.transformer\.layers\.(\d+)\.layer_norm(\d)\.", r".transformer.layers.\1.norm\2."),
        (r"\.layer_norm_final_attn\.", ".norm_final_attn."),
        (r"\.upscale_conv1\.", ".output_upscaling.0."), (r"\.upscale_layer_norm\.", ".output_upscaling.1."),
        (r"\.upscale_conv2\.", ".output_upscaling.3."),
        # 3-layer heads: transformers' proj_in, layers.0, proj_out are segment-anything's layers.0, 1, 2
        (r"\.layers\.0\.(weight|bias)$", r".layers.1.\1"),
        (r"\.proj_in\.", ".layers.0."), (r"\.proj_out\.", ".layers.2."),
    ]
    out = {}
    for key, value in state.items():
        if key == "prompt_encoder.shared_embedding.positional_embedding":
            continue  # tied to shared_image_embedding
        for pattern, repl in renames:
            if pattern.startswith(r"\.layers\.0\.") and not re.search(r"(hypernetworks_mlps\.\d+|iou_prediction_head)\.layers", key):
                continue
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


@needs("segment_anything", "transformers")
def test_sam_and_sam_hf_give_the_same_masks(tmp_path: Path) -> None:
    import torch
    from segment_anything import SamPredictor
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    from sedic_plugins.segmenters.sam import SamHFSegmenter, SamSegmenter, build_tiny_sam
    from transformers import SamModel

    build_tiny_sam(tmp_path / "sam-hf")
    hf = SamModel.from_pretrained(tmp_path / "sam-hf")
    vision = hf.config.vision_config
    sam = Sam(  # segment-anything's own modules, sized like tiny/sam
        image_encoder=ImageEncoderViT(
            img_size=vision.image_size, patch_size=vision.patch_size, embed_dim=vision.hidden_size, depth=vision.num_hidden_layers,
            num_heads=vision.num_attention_heads, mlp_ratio=vision.mlp_dim / vision.hidden_size, out_chans=vision.output_channels,
            qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=vision.window_size,
            global_attn_indexes=vision.global_attn_indexes,
        ),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(64, 64), mask_in_chans=4),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
        ),
    ).eval()
    sam.load_state_dict(hf_sam_to_segment_anything(hf.state_dict()), strict=True)

    source = load_image(textured_image(96, 64, seed=3))
    payload = Payload(96, 64, "", [SemanticObject("a", box=(10, 8, 60, 50)), SemanticObject("b", box=(40, 20, 90, 60))])
    ours = SamHFSegmenter(model=str(tmp_path / "sam-hf"), device="cpu").segment(source, payload)
    official = SamSegmenter(device="cpu")
    official._predictor = SamPredictor(sam)  # the plugin's loader builds only the official vit_b/l/h sizes
    theirs = official.segment(source, payload)
    for a, b in zip(ours.objects, theirs.objects, strict=True):
        assert a.mask.any() and (~a.mask).any()
        assert np.array_equal(a.mask, b.mask)  # exact: same resize (bilinear PIL), normalisation and threshold


# -- ORAG with no objects (J = 0) is diffusers' StableDiffusionControlNetPipeline -------------
@needs("diffusers", "transformers")
@pytest.mark.parametrize("cfg_scale", [1.0, 3.0])
def test_orag_without_objects_is_the_controlnet_pipeline(cfg_scale: float) -> None:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionControlNetPipeline
    from sedic_plugins.restorers.orag import OragRestorer
    from sedic_plugins.restorers.orag.components import load_sd15

    options = {"model": "tiny/sd15", "controlnet": "tiny/sd15-tile", "device": "cpu", "dtype": "float32",
               "global_steps": 4, "cfg_scale": cfg_scale, "negative_prompt": "grey, flat", "seed": 7}
    reference = textured_image(128, 64, seed=5)
    caption = "a red barn under a blue sky"
    ours = OragRestorer(**options).restore(reference, Payload(128, 64, caption, []))

    parts = load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32")
    pipe = StableDiffusionControlNetPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        controlnet=parts.controlnet, scheduler=DDIMScheduler.from_config(parts.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    noise = torch.randn((1, 4, 8, 16), generator=torch.Generator().manual_seed(7))  # ORAG's first draw
    theirs = pipe(
        prompt=caption, negative_prompt="grey, flat", image=reference, height=64, width=128, num_inference_steps=4,
        guidance_scale=cfg_scale, controlnet_conditioning_scale=1.0, latents=noise, output_type="pil",
    ).images[0]
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


@needs("diffusers", "transformers", "peft")
@pytest.mark.parametrize(("scheduler", "lora", "cfg_scale"), [
    ("lcm", "tiny/sd15-lora", 1.0), ("lcm", "tiny/sd15-lora", 1.5), ("tcd", "tiny/sd15-lora", 1.0), ("dpm++2m", "", 1.0),
])
def test_few_step_orag_without_objects_is_the_controlnet_pipeline(scheduler: str, lora: str, cfg_scale: float) -> None:
    """The same with diffusers' few-step schedulers, the LoRA loaded and fused as the LCM-LoRA and
    TCD model cards do (``load_lora_weights`` + ``fuse_lora``); TCD's gamma is the pipeline's eta."""
    import diffusers
    import torch
    from diffusers import StableDiffusionControlNetPipeline
    from sedic_kit.model_files import tiny_path
    from sedic_plugins.restorers.orag import OragRestorer
    from sedic_plugins.restorers.orag.components import load_sd15, unload_sd15
    from sedic_plugins.restorers.orag.sampler import SCHEDULER_CLASSES

    options = {"model": "tiny/sd15", "controlnet": "tiny/sd15-tile", "device": "cpu", "dtype": "float32", "scheduler": scheduler,
               "lora": lora, "global_steps": 4, "cfg_scale": cfg_scale, "negative_prompt": "grey, flat", "seed": 7, "tcd_gamma": 0.3}
    reference = textured_image(128, 64, seed=5)
    caption = "a red barn under a blue sky"
    ours = OragRestorer(**options).restore(reference, Payload(128, 64, caption, []))

    base = ("tiny/sd15", "tiny/sd15-tile", "cpu", "float32")
    unload_sd15(*base)  # loaded afresh, without the LoRA: the pipeline below fuses one into this UNet
    parts = load_sd15(*base)
    try:
        pipe = StableDiffusionControlNetPipeline(
            vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet, controlnet=parts.controlnet,
            scheduler=getattr(diffusers, SCHEDULER_CLASSES[scheduler]).from_config(parts.scheduler_config),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        if lora:
            pipe.load_lora_weights(str(tiny_path(lora.removeprefix("tiny/"))))
            pipe.fuse_lora()
        generator = torch.Generator().manual_seed(7)
        noise = torch.randn((1, 4, 8, 16), generator=generator)  # ORAG's first draw; its step noise comes next
        theirs = pipe(
            prompt=caption, negative_prompt="grey, flat", image=reference, height=64, width=128, num_inference_steps=4,
            guidance_scale=cfg_scale, controlnet_conditioning_scale=1.0, latents=noise, generator=generator, eta=0.3,
            output_type="pil",
        ).images[0]
    finally:
        unload_sd15(*base)  # that UNet now holds the fused LoRA: no later test may get it from the cache
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


# -- sam2 through our plugin vs SAM2ImagePredictor called directly ---------------------------
@needs("sam2.build_sam", "sam2.sam2_image_predictor")
def test_sam2_plugin_is_sam2_image_predictor(tmp_path: Path) -> None:
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    from sedic_plugins.segmenters.sam import SAM2_VARIANTS, Sam2Segmenter

    options = tiny_sam2(tmp_path)
    image = textured_image(96, 64, seed=4)
    boxes = [(10, 8, 60, 50), (40, 20, 90, 60)]
    payload = Payload(96, 64, "", [SemanticObject(str(i), box=b) for i, b in enumerate(boxes)])
    ours = Sam2Segmenter(**options).segment(load_image(image), payload)

    predictor = SAM2ImagePredictor(build_sam2(SAM2_VARIANTS[options["variant"]][1], options["checkpoint"], device="cpu"))
    predictor.set_image(np.asarray(image))
    for obj, b in zip(ours.objects, boxes, strict=True):
        masks, scores, _ = predictor.predict(box=np.array([b], dtype=np.float32), multimask_output=True)
        best = masks[int(np.argmax(scores))] > 0
        assert best.any() and (~best).any()
        assert np.array_equal(obj.mask, best)
