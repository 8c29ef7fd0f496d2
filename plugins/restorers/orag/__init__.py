"""``orag`` restorer: the paper's multi-stage decoder (Algorithm 1) on SD1.5 / SD2.1 + a ControlNet.

Object by object, ORAG restores the object's details into the current image with cross-attention
backward guidance towards its mask, blending latents outside the mask with the previous stage at
every step; a final ControlNet pass restores the whole image with the caption.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.imaging import upsample
from sedic_kit.models import ModelSpec
from sedic_kit.payload import Payload
from sedic_kit.roles import Restorer, free_memory

from . import tiny  # noqa: F401  (registers tiny/sd15, tiny/sd15-tile, tiny/sd15-latent, tiny/sd21, tiny/diffbir-v2, tiny/sd15-lora, tiny/sd21-lora, tiny/taesd)
from .canvas import Canvas
from .components import required_models
from .options import DECODE_PARAMS, OragOptions


class OragRestorer(Restorer[OragOptions]):
    """Object Restoration with Attention Guidance, then a global ControlNet stage."""

    name = "orag"
    version = 4  # 2: float32 latents and guidance update, preset, per-stage CFG, ddpm, resolution, guidance_reduce;
    # 3: few-step samplers (lcm, tcd) per stage, the fast preset, lora_scale; 4: stage_images
    decode_params = DECODE_PARAMS
    requires = ("torch", "diffusers", "transformers", "accelerate", "safetensors", "peft")
    extra = "diffusion"
    options: OragOptions

    def decode_config(self) -> dict[str, Any]:
        """The preset's name (unless ours) and the decode options that differ from the preset."""
        o = self.options
        defaults = OragOptions.model_validate({"preset": o.preset})
        params = {k: getattr(o, k) for k in DECODE_PARAMS if getattr(o, k) != getattr(defaults, k)}
        return {"preset": o.preset, **params} if o.preset != "sedic-kit" else params

    def required_models(self) -> list[ModelSpec]:
        o = self.options
        return required_models(o.model, o.controlnet, o.lora, o.tiny_vae_choice)

    def release(self) -> None:
        from .components import unload_sd15

        o = self.options
        unload_sd15(o.model, o.controlnet, o.device, o.dtype, o.lora_choice, o.tiny_vae_choice)
        free_memory()

    def decode_work(self, width: int, height: int, objects: int) -> int:
        """Latent pixels of the working image (at ``resolution``) times the denoising steps of every
        stage, one per object and the global one: the U-Net and the ControlNet run per latent
        pixel and step, and a file sets the steps. One latent pixel-step counts as one plain pixel
        (work a GPU does; on a CPU it is far slower, so a CPU service lowers ``--max-pixels``)."""
        o = self.options
        w, h = width, height
        if o.resolution:
            scale = o.resolution / min(width, height)
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
        steps = objects * max(1, round(o.object_steps * o.strength)) + max(1, round(o.global_steps * o.strength))
        rows, cols = Canvas(w, h).latent
        return max(width * height, rows * cols * steps)

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        self.check_available()
        from ...shared.hf import quiet_transformers, torch_threads
        from .components import check_control, load_sd15
        from .options import check_lora
        from .sampler import OragSampler

        o = self.options
        check_lora(o)
        with quiet_transformers():  # loading bars, backend notices (key mismatches are errors)
            parts = load_sd15(o.model, o.controlnet, o.device, o.dtype, o.lora_choice, o.tiny_vae_choice)
        check_control(parts, o.control, o.controlnet)
        image = upsample(reference.convert("RGB"), payload.width, payload.height)
        with torch_threads(o.threads):
            return OragSampler(parts, o).run(image, payload.caption, payload.objects).image


@hookimpl
def register_restorers(register: Register) -> None:
    register(OragRestorer)
