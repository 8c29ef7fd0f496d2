"""Loading SD1.5 or SD2.1 (UNet, VAE, CLIP text encoder, tokenizer, scheduler config) and a ControlNet.

The ControlNet is a diffusers directory / hub id (``ControlNetModel``, or ``IRControlNetModel``
by its config's ``_class_name``) or a DiffBIR checkpoint file (``v2.pth``), converted once for
the model's UNet config and cached under ``$SEDIC_CACHE/converted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sedic_kit.errors import ProfileError
from sedic_kit.file_sets import CONTROLNET, LORA, SINGLE_FILES, TINY_AUTOENCODER, present, sd_files
from sedic_kit.model_files import require
from sedic_kit.models import ModelSpec

SD_EXTRAS = ("tokenizer/special_tokens_map.json",)
"""Read when present (the tokenizer's special tokens); the rest is :func:`sd_files`."""
LORA_ADAPTER = "fewstep"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".bin")
# DiffBIR's published IRControlNets (XPixelGroup/DiffBIR, diffbir/inference/pretrained_models.py), same layout
DIFFBIR_URLS = {
    "v2.pth": "https://huggingface.co/lxq007/DiffBIR-v2/resolve/main/v2.pth",
    "v1_general.pth": "https://huggingface.co/lxq007/DiffBIR-v2/resolve/main/v1_general.pth",
    "v1_face.pth": "https://huggingface.co/lxq007/DiffBIR-v2/resolve/main/v1_face.pth",
}


def is_checkpoint_file(spec: str) -> bool:
    """A single checkpoint file (DiffBIR ``.pth``) rather than a diffusers directory or hub id."""
    return spec.lower().endswith(CHECKPOINT_SUFFIXES)


@dataclass
class SD15:
    """The frozen models ORAG samples with (SD1.5 or SD2.1: the same components)."""

    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    controlnet: Any
    scheduler_config: dict[str, Any]
    compiled: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    adapter: bool = False  # a LoRA adapter is loaded unfused (switched per stage), not fused into the UNet
    tiny_vae: Any = None  # TAESD (AutoencoderTiny) for the intermediate stage images, when asked for

    def use_lora(self, on: bool) -> None:
        """Switch the unfused LoRA adapter on or off (a no-op without one)."""
        if self.adapter:
            self.unet.enable_adapters() if on else self.unet.disable_adapters()

    def denoisers(self, mode: str = "off") -> tuple[Any, Any]:
        """ControlNet and UNet for the denoising forward: ``torch.compile``d with ``mode`` (once per
        mode, kept with the models), or as they are for ``off``."""
        if mode == "off":
            return self.controlnet, self.unet
        if mode not in self.compiled:
            import torch

            self.compiled[mode] = (torch.compile(self.controlnet, mode=mode), torch.compile(self.unet, mode=mode))
        return self.compiled[mode]

    @property
    def device(self) -> Any:
        return self.unet.device

    @property
    def dtype(self) -> Any:
        return self.unet.dtype

    @property
    def models(self) -> list[Any]:
        return [self.text_encoder, self.vae, self.unet, self.controlnet, *([self.tiny_vae] if self.tiny_vae is not None else [])]

    def freeze(self) -> None:
        """Inference mode: no parameter gradients (guidance differentiates the latent only)."""
        for model in self.models:
            model.requires_grad_(False)
            model.eval()

    def to(self, device: Any) -> SD15:
        for model in self.models:
            model.to(device)
        return self


def controlnet_spec(controlnet: str) -> ModelSpec:
    """A DiffBIR file (by path, or by its published name, e.g. ``v2.pth``) or a diffusers ControlNet."""
    if is_checkpoint_file(controlnet):
        return ModelSpec("restorer.controlnet", controlnet, source="url", url=DIFFBIR_URLS.get(Path(controlnet).name))
    return ModelSpec("restorer.controlnet", controlnet, needs=CONTROLNET)


def model_spec(model: str) -> ModelSpec:
    return ModelSpec("restorer.model", model, allow_patterns=SD_EXTRAS, needs=sd_files(model))


def lora_spec(lora: str) -> ModelSpec:
    return ModelSpec("restorer.lora", lora, needs=LORA)


def tiny_vae_spec(tiny_vae: str) -> ModelSpec:
    return ModelSpec("restorer.tiny_vae", tiny_vae, needs=TINY_AUTOENCODER)


def required_models(model: str, controlnet: str, lora: str = "", tiny_vae: str = "") -> list[ModelSpec]:
    extra = [*([lora_spec(lora)] if lora else []), *([tiny_vae_spec(tiny_vae)] if tiny_vae else [])]
    return [model_spec(model), controlnet_spec(controlnet), *extra]


def resolve_device(device: str, dtype: str) -> tuple[Any, Any]:
    """``auto``: CUDA in float16 when available, else CPU in float32."""
    import torch

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    if dtype == "auto":
        return dev, torch.float16 if dev.type == "cuda" else torch.float32
    return dev, getattr(torch, dtype)


_cache: dict[tuple[str, ...], SD15] = {}


@dataclass(frozen=True)
class Lora:
    """A few-step LoRA for the UNet: fused at ``scale``, or kept as an adapter switched per stage."""

    spec: str
    scale: float = 1.0
    fuse: bool = True


def _key(model: str, controlnet: str, device: str, dtype: str, lora: Lora | None, tiny_vae: str) -> tuple[str, ...]:
    dev, dt = resolve_device(device, dtype)
    return (model, controlnet, str(dev), str(dt), tiny_vae, *((lora.spec, str(lora.scale), str(lora.fuse)) if lora else ()))


def load_sd15(model: str, controlnet: str, device: str, dtype: str, lora: Lora | None = None, tiny_vae: str = "") -> SD15:
    """Load (once per process and setting) SD1.5 and a ControlNet (and a LoRA, a tiny autoencoder)
    from hub ids or local directories."""
    dev, dt = resolve_device(device, dtype)
    key = _key(model, controlnet, device, dtype, lora, tiny_vae)
    if key in _cache:
        return _cache[key]
    from diffusers import AutoencoderKL, AutoencoderTiny, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from ...shared.hf import load_checked

    root = require(model_spec(model))
    cn_root, cn_class = controlnet_dir(controlnet, root)
    single = single_file(root, model)
    if single is None:
        text_encoder = load_checked(CLIPTextModel, root / "text_encoder", "restorer.model", torch_dtype=dt)
        vae = load_checked(AutoencoderKL, root / "vae", "restorer.model", torch_dtype=dt)
        unet = load_checked(UNet2DConditionModel, root / "unet", "restorer.model", torch_dtype=dt)
    else:
        text_encoder, vae, unet = load_single_file(single, root, dt)
    parts = SD15(
        tokenizer=CLIPTokenizer.from_pretrained(root, subfolder="tokenizer"),
        text_encoder=text_encoder,
        vae=vae,
        unet=unet,
        controlnet=load_checked(cn_class, cn_root, "restorer.controlnet", torch_dtype=dt),
        scheduler_config=dict(DDIMScheduler.load_config(root, subfolder="scheduler")),
        tiny_vae=load_checked(AutoencoderTiny, require(tiny_vae_spec(tiny_vae)), "restorer.tiny_vae", torch_dtype=dt) if tiny_vae else None,
    ).to(dev)
    if lora:
        load_lora(parts, lora, model)
    parts.freeze()
    _cache.clear()  # one model set resident at a time
    _cache[key] = parts
    return parts


def single_file(root: Path, model: str) -> Path | None:
    """The repository's one-file checkpoint when the diffusers UNet weights are not there (``models pull``
    fetches it only then): it holds the UNet, VAE and text encoder."""
    if any(present(root, f"unet/{name}") for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")):
        return None
    return next((root / name for name in SINGLE_FILES.get(model, ()) if present(root, name)), None)


def load_single_file(path: Path, root: Path, dtype: Any) -> tuple[Any, Any, Any]:
    """Text encoder, VAE and UNet of a one-file SD checkpoint, converted by diffusers with the configs in ``root``."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(path), config=str(root), local_files_only=True, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False
    )
    return pipe.text_encoder, pipe.vae, pipe.unet


def unload_sd15(model: str, controlnet: str, device: str, dtype: str, lora: Lora | None = None, tiny_vae: str = "") -> None:
    """Drop the models :func:`load_sd15` keeps for this setting (compiled ones included)."""
    if _cache:
        _cache.pop(_key(model, controlnet, device, dtype, lora, tiny_vae), None)


def load_lora(parts: SD15, lora: Lora, model: str) -> None:
    """``lora`` into the UNet through diffusers' LoRA loader (peft), then fused with ``fuse_lora`` as
    the LCM-LoRA and TCD model cards do, or left as an adapter at ``lora.scale``.

    ``lora_state_dict`` reads the published layouts (LCM-LoRA's kohya keys ``lora_unet_<module>.lora_down``
    / ``lora_up`` + ``.alpha``, diffusers' own ``unet.<module>.lora_A`` / ``lora_B``); every tensor of the
    file must then sit in a UNet layer (diffusers only warns about the ones that fit none)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging
    from peft.utils import get_peft_model_state_dict

    from sedic_kit.roles import one_line

    root = require(lora_spec(lora.spec))
    name = f"restorer.lora: '{lora.spec}'"
    pipe: Any = StableDiffusionPipeline(  # only the LoRA loader is used; the models stay ours
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        scheduler=DDIMScheduler.from_config(parts.scheduler_config), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    try:
        state, alphas, metadata = pipe.lora_state_dict(str(root), return_lora_metadata=True)
    except Exception as exc:
        raise ProfileError(f"{name} is not a LoRA file diffusers reads ({one_line(exc)})") from None
    if other := next((key for key in state if "lora" not in key), None):
        raise ProfileError(f"{name} is not a LoRA: it holds '{other}'")
    if any(key.startswith("text_encoder") for key in state):
        raise ProfileError(f"{name} also changes the text encoder; only UNet LoRAs (LCM-LoRA, TCD) are supported")
    if not any(key.startswith("unet.") for key in state):
        raise ProfileError(f"{name} has no tensors for the UNet of '{model}'")
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its warning on tensors that fit no layer: the check below stops on them
    try:
        pipe.load_lora_into_unet(state, alphas, parts.unet, adapter_name=LORA_ADAPTER, metadata=metadata, _pipeline=pipe)
    except Exception as exc:
        raise ProfileError(f"{name} does not load into restorer.model '{model}' ({one_line(exc)})") from None
    finally:
        diffusers_logging.set_verbosity(level)
    loaded = len(get_peft_model_state_dict(parts.unet, adapter_name=LORA_ADAPTER))
    if loaded != len(state):  # fewer: tensors for layers the UNet lacks; more: layers with a half missing
        raise ProfileError(f"{name} does not load into restorer.model '{model}' (the UNet took {loaded} LoRA tensors, the file has {len(state)})")
    if lora.fuse:
        pipe.fuse_lora(components=["unet"], lora_scale=lora.scale, adapter_names=[LORA_ADAPTER])
        pipe.unload_lora_weights()  # keeps the fused weights, drops the LoRA layers
    else:
        parts.unet.set_adapters([LORA_ADAPTER], [lora.scale])
        parts.adapter = True


def controlnet_dir(spec: str, model_root: Path) -> tuple[Path, Any]:
    """The diffusers directory of the ControlNet ``spec`` and its class; DiffBIR files are converted
    (a directory holding no ``config.json`` but one checkpoint file counts as that file)."""
    import json

    from diffusers import ControlNetModel

    from sedic_kit.model_files import locate

    from .ircontrolnet import IRControlNetModel, convert_cached

    if is_checkpoint_file(spec):
        return convert_cached(locate(controlnet_spec(spec)), model_root), IRControlNetModel
    cn_spec = controlnet_spec(spec)
    root = locate(cn_spec)
    files = [p for p in root.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES] if root.is_dir() else []
    if root.is_dir() and not (root / "config.json").is_file() and len(files) == 1:
        return convert_cached(files[0], model_root), IRControlNetModel
    root = require(cn_spec)
    name = json.loads((root / "config.json").read_text()).get("_class_name")
    return root, IRControlNetModel if name == IRControlNetModel.__name__ else ControlNetModel


def check_control(parts: SD15, control: str, spec: str) -> None:
    """The ControlNet's condition input must match ``control`` (image: 3 channels, latent: 4)."""
    channels = parts.controlnet.config.conditioning_channels
    expected = 4 if control == "latent" else 3
    if channels != expected:
        kind = "a latent" if channels == 4 else "an image"
        raise ProfileError(f"restorer.control='{control}' needs a ControlNet with {expected} condition channels; '{spec}' is {kind} ControlNet ({channels})")
