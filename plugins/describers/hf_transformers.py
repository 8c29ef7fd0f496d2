"""``transformers`` describer: a local vision-language model (e.g. ``llava-hf/llava-1.5-7b-hf``) on CPU/GPU.

Loads ``AutoProcessor`` + ``AutoModelForImageTextToText`` from a hub id, a directory or
``tiny/llava`` (a random LLaVA built from configs, for tests). transformers has no guided decoding,
so the answer is steered by the shared three-stage template and fixed by the shared tolerant
parser and its one repair request. Greedy decoding by default: the same image gives the same text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from sedic_kit.file_sets import LLAVA
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.model_files import require
from sedic_kit.models import ModelSpec, register_tiny
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.prompting import LMMDescriptionOptions, describe_with, fit_image
from sedic_kit.roles import Describer, free_memory

from ..shared.hf import TorchOptions, byte_level_tokenizer, load_checked, manual_seed, pick_device, quiet_transformers

VLM_EXTRAS = ("*.json", "*.model", "*.txt", "*.jinja")

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() }}: "
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


class TransformersDescriberOptions(LMMDescriptionOptions, TorchOptions):
    model: str = Field("llava-hf/llava-1.5-7b-hf", description="hub id (cached), local directory or tiny/llava")
    max_image_side: int = Field(672, ge=32, le=4096, description="image resized to this longer side before the processor")
    seed: int = 0


class TransformersDescriber(Describer[TransformersDescriberOptions]):
    """Caption and objects from a local image-text-to-text model through transformers."""

    name = "transformers"
    requires = ("torch", "transformers")
    extra = "transformers"

    def __init__(self, options: TransformersDescriberOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._loaded: tuple[Any, Any, str] | None = None

    def required_models(self) -> list[ModelSpec]:
        return [ModelSpec("describer.model", self.options.model, allow_patterns=VLM_EXTRAS, needs=LLAVA)]

    def load(self) -> tuple[Any, Any, str]:
        """``(processor, model, device)``, loaded once."""
        if self._loaded is None:
            path = require(self.required_models()[0])
            from transformers import AutoModelForImageTextToText, AutoProcessor

            device, dtype = pick_device(self.options)
            with quiet_transformers():
                processor = AutoProcessor.from_pretrained(path)
                model: Any = load_checked(AutoModelForImageTextToText, path, "describer.model", dtype=dtype)
                model = model.to(device).eval()
            self._loaded = (processor, model, device)
        return self._loaded

    def release(self) -> None:
        self._loaded = None
        free_memory()

    def describe(self, source: SourceImage) -> Payload:
        processor, model, device = self.load()
        image = fit_image(source.image, self.options.max_image_side)

        def ask(question: str) -> str:
            import torch

            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(images=image, text=prompt, return_tensors="pt").to(device)
            inputs.pop("token_type_ids", None)  # transformers 4's tokenizers add them; LLaVA takes none
            inputs = {k: v.to(model.dtype) if v.is_floating_point() else v for k, v in inputs.items()}
            sample = self.options.temperature > 0
            manual_seed(self.options.seed)
            with torch.inference_mode():
                out = model.generate(
                    **inputs,
                    max_new_tokens=self.options.max_new_tokens,
                    do_sample=sample,
                    temperature=self.options.temperature if sample else None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=processor.tokenizer.pad_token_id,
                )
            new = out[0, inputs["input_ids"].shape[1] :]
            return processor.tokenizer.decode(new, skip_special_tokens=True)

        return describe_with(ask, source, self.options, self.name)


@register_tiny("llava")
def build_tiny_llava(directory: Path) -> None:
    """A random LLaVA: CLIP vision tower (32 px, 8 px patches -> 16 image tokens) + tiny Llama."""
    import torch

    with quiet_transformers():  # torchvision-missing notices
        from transformers import (
            CLIPImageProcessor,
            CLIPVisionConfig,
            LlamaConfig,
            LlavaConfig,
            LlavaForConditionalGeneration,
            LlavaProcessor,
        )

    tokenizer = byte_level_tokenizer(("<image>",))
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    image_size, patch = 32, 8
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=image_size, patch_size=patch
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=(image_size // patch) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        chat_template=TINY_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    with quiet_transformers():
        model.save_pretrained(directory)
        processor.save_pretrained(directory)
    to_published_llava_layout(directory / "model.safetensors")


LLAVA_PREFIXES = (  # transformers >= 4.52 names -> the names of llava-hf's published checkpoints
    ("model.language_model.", "language_model.model."),
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("lm_head.", "language_model.lm_head."),
)


def to_published_llava_layout(path: Path) -> None:
    """Rename a LLaVA checkpoint's weights to the layout of ``llava-hf/llava-1.5-7b-hf``.

    That layout (``vision_tower.vision_model.*``, ``language_model.model.*``) is the one every
    loader accepts: transformers 4 and 5 map it on load, and vllm's llava loader requires it
    (transformers 5 saves the vision tower without ``vision_model.``, which vllm rejects).
    """
    from safetensors.torch import load_file, save_file

    save_file({published_llava_key(k): v for k, v in load_file(path).items()}, path, metadata={"format": "pt"})


def published_llava_key(key: str) -> str:
    """A LLaVA weight name as ``llava-hf/llava-1.5-7b-hf`` spells it (transformers 4.40-era layout)."""
    for new, old in LLAVA_PREFIXES:
        if key.startswith(new):
            key = old + key[len(new) :]
    if key.startswith("vision_tower.") and not key.startswith("vision_tower.vision_model."):
        key = "vision_tower.vision_model." + key[len("vision_tower.") :]
    return key


@hookimpl
def register_describers(register: Register) -> None:
    register(TransformersDescriber)
