"""``grounding-dino`` grounder: Grounding DINO through transformers (works with transformers 4.44+ and 5).

Loads ``AutoProcessor`` + ``AutoModelForZeroShotObjectDetection`` from a hub id
(``IDEA-Research/grounding-dino-base`` / ``-tiny``), a directory or ``tiny/grounding-dino`` (random
weights: tiny Swin + BERT, for tests). See :mod:`sedic_plugins.grounders.dino` for the filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from sedic_kit.file_sets import GROUNDING_DINO_HF
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.model_files import require
from sedic_kit.models import ModelSpec, register_tiny
from sedic_kit.payload import SourceImage
from sedic_kit.roles import free_memory

from ..shared.hf import TorchOptions, load_checked, pick_device, quiet_transformers
from .dino import Detection, DinoGrounder, GroundingOptions, name_positions, query_detections, query_text

DINO_EXTRAS = ("*.json", "*.txt")


class GroundingDinoOptions(GroundingOptions, TorchOptions):
    model: str = Field("IDEA-Research/grounding-dino-base", description="hub id (cached), local directory or tiny/grounding-dino")


class GroundingDinoGrounder(DinoGrounder[GroundingDinoOptions]):
    """Drops objects Grounding DINO cannot find; sets the best box of the others."""

    name = "grounding-dino"
    requires = ("torch", "transformers")
    extra = "transformers"

    def __init__(self, options: GroundingDinoOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._loaded: tuple[Any, Any, str] | None = None

    def required_models(self) -> list[ModelSpec]:
        return [ModelSpec("grounder.model", self.options.model, allow_patterns=DINO_EXTRAS, needs=GROUNDING_DINO_HF)]

    def load(self) -> tuple[Any, Any, str]:
        if self._loaded is None:
            path = require(self.required_models()[0])
            from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

            device, dtype = pick_device(self.options)
            with quiet_transformers():
                processor = AutoProcessor.from_pretrained(path)
                model = load_checked(AutoModelForZeroShotObjectDetection, path, "grounder.model", dtype=dtype).to(device).eval()
            self._loaded = (processor, model, device)
        return self._loaded

    def release(self) -> None:
        self._loaded = None
        free_memory()

    def detect(self, source: SourceImage, names: list[str]) -> list[list[Detection]]:
        """Candidate boxes per name (one query per name, batched)."""
        import torch

        processor, model, device = self.load()
        width, height = source.size
        pixels = processor.image_processor(images=source.image, return_tensors="pt")
        text = processor.tokenizer([query_text(n) for n in names], padding=True, return_tensors="pt")
        n = len(names)
        inputs = {k: v.to(device) for k, v in text.items()}
        inputs["pixel_values"] = pixels["pixel_values"].to(device, model.dtype).expand(n, -1, -1, -1)
        if "pixel_mask" in pixels:
            inputs["pixel_mask"] = pixels["pixel_mask"].to(device).expand(n, -1, -1)
        with torch.inference_mode():
            out = model(**inputs)
        probs = out.logits.float().sigmoid().cpu()  # (n, queries, max_text_len); -inf outside the text -> 0
        boxes = out.pred_boxes.float().cpu()
        ids = text["input_ids"].tolist()
        return [query_detections(probs[i], boxes[i], name_positions(processor.tokenizer, ids[i]), width, height) for i in range(n)]


TINY_WORDS = ("a", "the", "red", "blue", "green", "car", "cat", "dog", "house", "tree", "sky", "person", "bird", "boat", "flower", "hat")


@register_tiny("grounding-dino")
def build_tiny_grounding_dino(directory: Path) -> None:
    """A random Grounding DINO: tiny Swin backbone + tiny BERT text encoder, 16 queries."""
    import torch

    with quiet_transformers():  # torchvision-missing notices
        from transformers import (
            BertConfig,
            BertTokenizer,
            GroundingDinoConfig,
            GroundingDinoForObjectDetection,
            GroundingDinoImageProcessor,
            GroundingDinoProcessor,
            SwinConfig,
        )

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *TINY_WORDS]
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(vocab_file), do_lower_case=True)  # positional: vocab_file (4.x) / vocab (5.x)
    # accepted as keyword arguments; transformers 5 declares them as properties, unknown to mypy
    backbone_outputs: dict[str, Any] = {"out_features": ["stage2", "stage3", "stage4"], "out_indices": [2, 3, 4]}
    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        **backbone_outputs,
    )
    text = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        num_queries=16,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=64,
    )
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(config).eval()
    with torch.no_grad():  # random features give logits of ~+-30 (scores all 0 or 1): shrink them
        model.model.decoder.layer_norm.weight.mul_(0.1)
        model.model.decoder.layer_norm.bias.mul_(0.1)
    with quiet_transformers():
        image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
        GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
        model.save_pretrained(directory)


@hookimpl
def register_grounders(register: Register) -> None:
    register(GroundingDinoGrounder)
