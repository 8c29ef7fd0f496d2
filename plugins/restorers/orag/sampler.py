"""Algorithm 1 of the paper: multi-stage semantic decoding with ORAG.

For each object j (payload order) a stage samples from noise conditioned on the current image
I_j (ControlNet) and the object prompt, takes an attention-guidance step on z_t while t > T',
denoises, and keeps the previous stage's latent at the same step outside M_j. The stage before
the first object is the reference image itself (its latent noised to every step), so the first
object is restored into the reference. A final stage restores the whole image with the caption.
Between stages, z_{j,0} becomes the next stage's image (``stage_images``: the model's VAE as in
the paper, a tiny autoencoder, or the latent itself for a latent ControlNet).
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import diffusers
import numpy as np
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from sedic_kit.errors import SedicError
from sedic_kit.payload import SemanticObject

from .attention import ForwardDone, capture, energy
from .canvas import Canvas
from .components import SD15
from .options import FEW_STEP, OragOptions

SCHEDULER_CLASSES = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "dpm++2m": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "lcm": "LCMScheduler",
    "tcd": "TCDScheduler",
}
SCHEDULER_OVERRIDES = {"ddpm": {"timestep_spacing": "linspace", "variance_type": "fixed_small"}}
TILE_PIXELS = 1024 * 1024
MAX_WORK_PIXELS = 4096 * 4096


@dataclass
class Condition:
    """What one stage is conditioned on, and its scheduler."""

    prompt: str
    sampler: str  # the stage's scheduler (a key of SCHEDULER_CLASSES)
    cfg: float  # classifier-free guidance scale (<= 1: none)
    embeds: Any  # (1 or 2, 77, d): [negative,] prompt
    control: Any  # ControlNet input (model dtype): image in [0, 1] or VAE latent
    start: Any  # latent of the stage image (img2img start), None from pure noise
    scheduler: Any
    timesteps: Any
    tokens: list[int] = field(default_factory=list)  # positions of the object's tokens
    weights: dict[int, Any] = field(default_factory=dict)  # query count -> mask coverage
    embedded: dict[int, Any] = field(default_factory=dict)  # batch size -> ControlNet condition embedding


@dataclass
class Stage:
    """One stage's record: its latent after every step (after the blend), M_j, guidance energies."""

    prompt: str
    latents: list[Any]
    mask: np.ndarray | None = None
    energies: list[float] = field(default_factory=list)


@dataclass
class Restoration:
    image: Image.Image
    stages: list[Stage]
    reference: list[Any] | None = None  # the noised reference trajectory blended into stage 0


class OragSampler:
    """Latents, the guidance gradient and its update are float32 whatever the model dtype; only
    the models' inputs are cast (an update of z by eta * grad E rounded in float16/bfloat16 loses
    the entries smaller than half a unit in the last place of z)."""

    def __init__(self, parts: SD15, options: OragOptions) -> None:
        self.parts = parts
        self.options = options
        self.generator = torch.Generator().manual_seed(options.seed)

    # -- models --------------------------------------------------------------------------
    def embed(self, prompt: str) -> Any:
        tok = self.parts.tokenizer
        ids = tok(prompt, padding="max_length", max_length=self._max_tokens, truncation=True, return_tensors="pt").input_ids
        return self.parts.text_encoder(ids.to(self.parts.device))[0]

    @property
    def _max_tokens(self) -> int:
        return int(self.parts.text_encoder.config.max_position_embeddings)

    def encode(self, pixels: Any) -> Any:
        """Image in [0, 1] (1, 3, H, W) -> scaled VAE latent (distribution mean), float32."""
        vae = self.parts.vae
        return vae.encode(pixels * 2.0 - 1.0).latent_dist.mean.float() * vae.config.scaling_factor

    def decode(self, latent: Any, vae: Any = None) -> Any:
        """Scaled latent -> image in [0, 1] (model dtype), by the model's VAE or ``vae`` (TAESD)."""
        vae = self.parts.vae if vae is None else vae
        z = (latent / vae.config.scaling_factor).to(self.parts.dtype)
        return ((vae.decode(z).sample + 1.0) / 2.0).clamp(0.0, 1.0)

    def hand_off(self, latent: Any) -> tuple[Any, Any]:
        """The next stage's (image, latent) from an object stage's z_{j,0} (``stage_images``); a
        ``None`` latent is encoded from the image when the next stage needs one."""
        mode = self.options.stage_images
        if mode == "latent":
            return None, latent
        if mode == "tiny":
            return self.decode(latent, self.parts.tiny_vae), latent
        return self.decode(latent), None

    def _new_scheduler(self, steps: int, name: str) -> Any:
        cls = getattr(diffusers, SCHEDULER_CLASSES[name])
        sched = cls.from_config(self.parts.scheduler_config, **SCHEDULER_OVERRIDES.get(name, {}))
        sched.set_timesteps(steps, device=self.parts.device)
        return sched

    def scheduler(self, steps: int, name: str) -> tuple[Any, Any]:
        """A fresh scheduler ``name`` and the timesteps a stage runs (the last ``strength`` of ``steps``)."""
        sched = self._new_scheduler(steps, name)
        skip = steps - max(1, round(steps * self.options.strength))
        if skip and hasattr(sched, "set_begin_index"):
            sched.set_begin_index(skip)
        return sched, sched.timesteps[skip:]

    def object_tokens(self, obj: SemanticObject) -> list[int]:
        """Positions of the object's name in its prompt; all words when the name is not found."""
        tok = self.parts.tokenizer
        ids = tok(obj.prompt, max_length=self._max_tokens, truncation=True).input_ids
        name = tok(obj.name, add_special_tokens=False).input_ids if obj.name else []
        for i in range(1, len(ids) - len(name)):
            if name and ids[i : i + len(name)] == name:
                return list(range(i, i + len(name)))
        return list(range(1, len(ids) - 1))

    # -- one stage -----------------------------------------------------------------------
    @property
    def object_cfg(self) -> float:
        o = self.options
        return o.cfg_scale if o.object_cfg_scale is None else o.object_cfg_scale

    @property
    def global_cfg(self) -> float:
        o = self.options
        return o.cfg_scale if o.global_cfg_scale is None else o.global_cfg_scale

    def condition(self, pixels: Any, latent: Any, prompt: str, steps: int, negative: Any, cfg: float, sampler: str) -> Condition:
        """A stage's condition from its image and/or its latent (``None``: encoded from the image when needed)."""
        o = self.options
        prompt_embeds = self.embed(prompt)
        embeds = prompt_embeds if cfg <= 1 else torch.cat([negative, prompt_embeds])
        if latent is None and (o.control == "latent" or o.strength < 1):
            latent = self.encode(pixels)
        sched, timesteps = self.scheduler(steps, sampler)
        control = latent.to(self.parts.dtype) if o.control == "latent" else pixels
        return Condition(prompt, sampler, cfg, embeds, control, latent if o.strength < 1 else None, sched, timesteps)

    def object_condition(self, pixels: Any, latent: Any, obj: SemanticObject, canvas: Canvas, negative: Any) -> Condition:
        o = self.options
        cond = self.condition(pixels, latent, obj.prompt, o.object_steps, negative, self.object_cfg, o.stage_schedulers[0])
        cond.tokens = self.object_tokens(obj)
        rows, cols = canvas.latent
        for f in (1, 2, 4, 8):
            cover = canvas.coverage(_mask(obj, canvas), rows // f, cols // f)
            cond.weights[cover.size] = torch.from_numpy(cover.reshape(-1)).to(self.parts.device)
        return cond

    def _controlnet(self, cond: Condition, z: Any, t: Any, embeds: Any, net: Any = None) -> tuple[Any, Any]:
        n = z.shape[0]
        base = self.parts.controlnet
        if net is not None and net is not base:  # a compiled ControlNet: its graph embeds the condition
            return net(z, t, encoder_hidden_states=embeds, controlnet_cond=cond.control.expand(n, -1, -1, -1),
                       conditioning_scale=self.options.control_scale, return_dict=False)
        # the condition is constant during a stage: embed it (full resolution) once, not every step
        inner = base.controlnet_cond_embedding
        once = cond.embedded.setdefault(n, _EmbedOnce(inner))
        base.controlnet_cond_embedding = once
        try:
            return base(
                z, t, encoder_hidden_states=embeds, controlnet_cond=cond.control.expand(n, -1, -1, -1),
                conditioning_scale=self.options.control_scale, return_dict=False,
            )
        finally:
            base.controlnet_cond_embedding = inner

    def predict(self, cond: Condition, z: Any, t: Any) -> Any:
        """Noise prediction (float32) of ControlNet + UNet at z_t; CFG batches both branches."""
        n = cond.embeds.shape[0]
        zin = cond.scheduler.scale_model_input(z, t).to(self.parts.dtype).expand(n, -1, -1, -1)
        controlnet, unet = self.parts.denoisers(self.options.compile)
        down, mid = self._controlnet(cond, zin, t, cond.embeds, controlnet)
        eps = unet(zin, t, encoder_hidden_states=cond.embeds, down_block_additional_residuals=down,
                              mid_block_additional_residual=mid, return_dict=False)[0].float()
        if n == 1:
            return eps
        uncond, text = eps.chunk(2)
        return uncond + cond.cfg * (text - uncond)

    def energy(self, cond: Condition, z: Any, t: Any) -> Any:
        """E(A, M_j, k) at z_t on the guided block (differentiable; conditional branch only)."""
        embeds = cond.embeds[-1:]
        zin = cond.scheduler.scale_model_input(z, t).to(self.parts.dtype)
        with capture(self.parts.unet, self.options.guidance_block, cond.tokens) as maps:
            down, mid = self._controlnet(cond, zin, t, embeds)
            try:
                self.parts.unet(zin, t, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                                mid_block_additional_residual=mid, return_dict=False)
            except ForwardDone:
                pass
            else:
                raise RuntimeError(f"guided block {self.options.guidance_block} was not reached")
        return energy(maps, cond.weights, self.options.guidance_reduce)

    def guide(self, cond: Condition, z: Any, t: Any) -> tuple[float, Any]:
        """One backward-guidance update z_t <- z_t - eta * grad E (paper eq. 3) in float32; returns E before it.

        On CUDA the backward runs through the math attention kernel: the fused kernels' backward
        passes accumulate with atomics, in an order that changes from run to run.
        """
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernel = sdpa_kernel(SDPBackend.MATH) if self.parts.device.type == "cuda" else nullcontext()
        with torch.enable_grad(), kernel:
            z = z.detach().float().requires_grad_(True)
            e = self.energy(cond, z, t)
            (grad,) = torch.autograd.grad(e, z)
        return float(e), (z - self.options.eta * grad.float()).detach()

    def sample(self, cond: Condition, noise: Any, mask: np.ndarray | None = None, previous: list[Any] | None = None) -> Stage:
        """Denoise one stage; with ``mask``, guide (t > T') and blend with ``previous`` (eq. 4)."""
        sched = cond.scheduler
        if cond.start is None:
            z = noise * sched.init_noise_sigma
        else:
            z = sched.add_noise(cond.start, noise, cond.timesteps[:1])
        stage = Stage(cond.prompt, [], mask)
        keep = None if mask is None else torch.from_numpy(mask).to(z.device)[None, None]
        guided = keep is not None and bool(cond.tokens) and float(cond.weights[keep.numel()].sum()) > 0
        noise_kwargs: dict[str, Any] = {"generator": self.generator} if "generator" in inspect.signature(sched.step).parameters else {}
        if cond.sampler == "tcd":
            noise_kwargs["eta"] = self.options.tcd_gamma
        self.parts.use_lora(cond.sampler in FEW_STEP)
        for i, t in enumerate(cond.timesteps):
            if guided and int(t) > self.options.guidance_threshold:
                e, z = self.guide(cond, z, t)
                stage.energies.append(e)
            z = sched.step(self.predict(cond, z, t), t, z, return_dict=False, **noise_kwargs)[0]
            if keep is not None and previous is not None:
                z = torch.where(keep, z, previous[i])
            stage.latents.append(z)
        return stage

    def noised(self, latent: Any, noise: Any, steps: int) -> list[Any]:
        """``latent`` noised to the level after every step of an object stage (clean at the end)."""
        name = self.options.stage_schedulers[0]
        _, timesteps = self.scheduler(steps, name)
        noiser = self._new_scheduler(steps, name)
        return [noiser.add_noise(latent, noise, t[None]) for t in timesteps[1:]] + [latent]

    # -- Algorithm 1 ---------------------------------------------------------------------
    def configure_memory(self, canvas: Canvas) -> None:
        """VAE tiling and attention slicing as the options ask (the models are shared: set both ways)."""
        o, parts = self.options, self.parts
        h, w = canvas.padded
        tile = o.vae_tiling == "on" or (o.vae_tiling == "auto" and h * w > TILE_PIXELS)
        for vae in (parts.vae, parts.tiny_vae):
            if vae is not None:
                vae.enable_tiling() if tile else vae.disable_tiling()
        for net in (parts.unet, parts.controlnet):
            if o.attention_slicing:
                net.set_attention_slice("auto")
            elif any(type(p) is not AttnProcessor2_0 for p in net.attn_processors.values()):
                net.set_attn_processor(AttnProcessor2_0())  # only when needed: compiled graphs guard on them

    def working_image(self, image: Image.Image) -> Image.Image:
        """``image`` with its short side scaled to ``resolution`` (0: as is)."""
        side = self.options.resolution
        if not side or min(image.size) == side:
            return image
        scale = side / min(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if size[0] * size[1] > MAX_WORK_PIXELS:
            raise SedicError(f"restorer.resolution={side} scales {image.width}x{image.height} to {size[0]}x{size[1]}, above {MAX_WORK_PIXELS} pixels")
        return image.resize(size, Image.Resampling.BICUBIC)

    def run(self, image: Image.Image, caption: str, objects: list[SemanticObject]) -> Restoration:
        """Restore ``image`` (the full-size reference) object by object, then globally."""
        o, parts = self.options, self.parts
        work = self.working_image(image)
        canvas = Canvas(*work.size)
        self.configure_memory(canvas)
        self.generator = gen = torch.Generator().manual_seed(o.seed)
        shape = (1, parts.unet.config.in_channels, *canvas.latent)

        def draw() -> Any:
            return torch.randn(shape, generator=gen).to(parts.device)

        with ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            if parts.device.type == "cuda":  # no autotuned (run-dependent) convolution algorithms
                stack.enter_context(torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                                               allow_tf32=torch.backends.cudnn.allow_tf32))
            pixels = torch.from_numpy(canvas.pad_image(work)).permute(2, 0, 1)[None].to(parts.device, parts.dtype)
            cfgs = [self.global_cfg] + ([self.object_cfg] if objects else [])
            negative = self.embed(o.negative_prompt) if max(cfgs) > 1 else None
            stages: list[Stage] = []
            latent = self.encode(pixels) if objects else None  # E(I_0): the reference trajectory, and cf_0 when latent
            reference = previous = self.noised(latent, draw(), o.object_steps) if objects else None
            for obj in objects:
                cond = self.object_condition(pixels, latent, obj, canvas, negative)
                stage = self.sample(cond, draw(), canvas.latent_mask(_mask(obj, canvas)), previous)
                stages.append(stage)
                (pixels, latent), previous = self.hand_off(stage.latents[-1]), stage.latents
            cond = self.condition(pixels, latent, caption, o.global_steps, negative, self.global_cfg, o.stage_schedulers[1])
            stages.append(self.sample(cond, draw()))
            out = self.decode(stages[-1].latents[-1])[0].permute(1, 2, 0).float().cpu().numpy()
        restored = canvas.crop(out)
        if restored.size != image.size:
            restored = restored.resize(image.size, Image.Resampling.BICUBIC)
        return Restoration(restored, stages, reference)


class _EmbedOnce(torch.nn.Module):
    """A ControlNet's condition embedding that computes its (constant) input's embedding once."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.value: Any = None

    def forward(self, cond: Any) -> Any:
        if self.value is None:
            with torch.no_grad():
                self.value = self.inner(cond)
        return self.value


def _mask(obj: SemanticObject, canvas: Canvas) -> np.ndarray:
    """The object's mask; the whole frame when it has none."""
    return obj.mask if obj.mask is not None else np.ones((canvas.height, canvas.width), dtype=bool)
