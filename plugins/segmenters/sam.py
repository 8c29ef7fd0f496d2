"""SAM segmenters, box-prompted, keeping the multimask candidate with the best predicted IoU.

- ``sam-hf``: transformers ``SamModel`` (``facebook/sam-vit-huge`` / ``-large`` / ``-base``, a
  directory, or ``tiny/sam`` for tests); needs only the ``[transformers]`` extra.
- ``sam``: the official ``segment-anything`` package with a ``vit_b``/``vit_l``/``vit_h`` checkpoint.
- ``sam2``: the official ``sam2`` package (SAM 2.1 checkpoints from the Hugging Face hub).

``segment-anything`` and ``sam2`` import torchvision, whose compiled ops must match your torch
build: torchvision 0.28.0 from PyPI (the release for torch 2.13.0) does not import beside the CPU
wheel of torch 2.13.0 ("operator torchvision::nms does not exist"). Use the torch/torchvision pair
of one index (e.g. both CUDA builds) in their own environment, see the README.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field

from sedic_kit.file_sets import SAM_HF
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.model_files import locate, require
from sedic_kit.models import ModelSpec, register_tiny
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.roles import Segmenter, free_memory

from ..shared.hf import TorchOptions, load_checked, pick_device, quiet_transformers
from .box_prompts import prompt_boxes, with_masks

SAM_HF_EXTRAS = ("*.json",)
SAM_URLS = {
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}
SAM2_VARIANTS = {  # variant: (hub repository, config inside the sam2 package, checkpoint file)
    "tiny": ("facebook/sam2.1-hiera-tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt"),
    "small": ("facebook/sam2.1-hiera-small", "configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt"),
    "base-plus": ("facebook/sam2.1-hiera-base-plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt"),
    "large": ("facebook/sam2.1-hiera-large", "configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt"),
}


class SamHFOptions(TorchOptions):
    model: str = Field("facebook/sam-vit-huge", description="hub id (cached), local directory or tiny/sam")


class SamHFSegmenter(Segmenter[SamHFOptions]):
    """SAM through transformers: one image embedding, all object boxes prompted together."""

    name = "sam-hf"
    requires = ("torch", "transformers")
    extra = "transformers"

    def __init__(self, options: SamHFOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._loaded: tuple[Any, Any, str] | None = None

    def required_models(self) -> list[ModelSpec]:
        return [ModelSpec("segmenter.model", self.options.model, allow_patterns=SAM_HF_EXTRAS, needs=SAM_HF)]

    def load(self) -> tuple[Any, Any, str]:
        if self._loaded is None:
            path = require(self.required_models()[0])
            from transformers import SamModel, SamProcessor

            device, dtype = pick_device(self.options)
            with quiet_transformers():
                processor = SamProcessor.from_pretrained(path)
                model: Any = load_checked(SamModel, path, "segmenter.model", dtype=dtype)
                model = model.to(device).eval()
            self._loaded = (processor, model, device)
        return self._loaded

    def release(self) -> None:
        self._loaded = None
        free_memory()

    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        if not payload.objects:
            return payload
        import torch

        processor, model, device = self.load()
        boxes = [[float(v) for v in b] for b in prompt_boxes(payload)]
        inputs = processor(images=source.image, input_boxes=[boxes], return_tensors="pt")
        feed = {k: v.to(device) for k, v in inputs.items() if k in ("pixel_values", "input_boxes")}
        feed["pixel_values"] = feed["pixel_values"].to(model.dtype)
        feed["input_boxes"] = feed["input_boxes"].to(model.dtype)
        with torch.inference_mode():
            out = model(**feed, multimask_output=True)
        masks = processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )[0]  # (objects, K, H, W) bool
        scores = out.iou_scores.float().cpu()[0]  # (objects, K)
        return with_masks(payload, [(masks[i].numpy(), scores[i].numpy()) for i in range(len(boxes))])


class SamOptions(TorchOptions):
    model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_h"
    checkpoint: str | None = Field(None, description="checkpoint file; default: the official one for model_type, cached")


PredictorOptionsT = TypeVar("PredictorOptionsT", bound=TorchOptions)


class PredictorSegmenter(Segmenter[PredictorOptionsT]):
    """A box-prompted SAM-family predictor: embed the image once, best multimask per object."""

    def __init__(self, options: PredictorOptionsT | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._predictor: Any = None

    @abstractmethod
    def predictor(self) -> Any:
        """The loaded predictor (built on first use)."""

    def release(self) -> None:
        self._predictor = None  # it holds the model and the last image's embedding
        free_memory()

    @abstractmethod
    def predict(self, predictor: Any, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate masks (bool) and their predicted IoUs for one box."""

    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        if not payload.objects:
            return payload
        predictor = self.predictor()
        predictor.set_image(np.asarray(source.image))
        candidates = [self.predict(predictor, np.asarray(box, dtype=np.float32)) for box in prompt_boxes(payload)]
        return with_masks(payload, candidates)


class SamSegmenter(PredictorSegmenter[SamOptions]):
    """The official segment-anything ``SamPredictor``."""

    name = "sam"
    requires = ("segment_anything", "torchvision")
    extra = "sam"

    def required_models(self) -> list[ModelSpec]:
        url = SAM_URLS[self.options.model_type]
        return [ModelSpec("segmenter.checkpoint", self.options.checkpoint or url, source="url", url=url)]

    def predictor(self) -> Any:
        if self._predictor is None:
            self.check_available()
            path = locate(self.required_models()[0])
            from segment_anything import SamPredictor, sam_model_registry

            device, _ = pick_device(self.options)
            sam = sam_model_registry[self.options.model_type](checkpoint=str(path)).to(device).eval()
            self._predictor = SamPredictor(sam)
        return self._predictor

    def predict(self, predictor: Any, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks, scores, _ = predictor.predict(box=box, multimask_output=True)
        return masks, scores


class Sam2Options(TorchOptions):
    variant: Literal["tiny", "small", "base-plus", "large"] = "large"
    checkpoint: str | None = Field(None, description="checkpoint file; default: the variant's from the hub, cached")


class Sam2Segmenter(PredictorSegmenter[Sam2Options]):
    """SAM 2.1 through the official ``sam2`` package's ``SAM2ImagePredictor``."""

    name = "sam2"
    requires = ("sam2", "torchvision")
    extra = "sam2"

    def required_models(self) -> list[ModelSpec]:
        repo, _, ckpt = SAM2_VARIANTS[self.options.variant]
        if self.options.checkpoint:
            return [ModelSpec("segmenter.checkpoint", self.options.checkpoint)]
        return [ModelSpec("segmenter.variant", repo, needs=((ckpt,),))]

    def predictor(self) -> Any:
        if self._predictor is None:
            self.check_available()
            _, config, ckpt = SAM2_VARIANTS[self.options.variant]
            found = locate(self.required_models()[0])
            path = found / ckpt if found.is_dir() else found
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            device, _ = pick_device(self.options)
            self._predictor = SAM2ImagePredictor(build_sam2(config, str(path), device=device))
        return self._predictor

    def predict(self, predictor: Any, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks, scores, _ = predictor.predict(box=box[None, :], multimask_output=True)
        return np.asarray(masks) > 0, scores


@register_tiny("sam")
def build_tiny_sam(directory: Path) -> None:
    """A random SAM at 64 px: 2-layer ViT, prompt/decoder width 32, num_pos_feats = 32 / 2."""
    import torch

    with quiet_transformers():  # torchvision-missing notices
        from transformers import (
            SamConfig,
            SamImageProcessor,
            SamMaskDecoderConfig,
            SamModel,
            SamProcessor,
            SamPromptEncoderConfig,
            SamVisionConfig,
        )

    size, patch, width = 64, 8, 32
    vision = SamVisionConfig(
        hidden_size=width,
        output_channels=width,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=size,
        patch_size=patch,
        window_size=4,
        global_attn_indexes=[1],
        num_pos_feats=width // 2,
        mlp_dim=64,
    )
    prompt = SamPromptEncoderConfig(hidden_size=width, image_size=size, patch_size=patch, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=width, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=width)
    torch.manual_seed(0)
    model = SamModel(SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)).eval()
    with quiet_transformers():
        image_processor = SamImageProcessor(
            size={"longest_edge": size}, pad_size={"height": size, "width": size}, mask_size={"longest_edge": size // 4}
        )
        SamProcessor(image_processor=image_processor).save_pretrained(directory)
        model.save_pretrained(directory)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(SamHFSegmenter)
    register(SamSegmenter)
    register(Sam2Segmenter)
