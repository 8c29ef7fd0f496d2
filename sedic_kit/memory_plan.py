"""GPU memory plan of a profile: weights and activations per phase, and the peak on one card.

Computed, not measured (no GPU here): weights are parameter counts times bytes per parameter
(half precision on CUDA). Counts come from the full-size architectures built on the meta device
from their published configs (:mod:`sedic_plugins.shared.full_size`); where torch, diffusers or
transformers is not installed, from :data:`PARAMS`, those counts recorded (a test keeps them
equal). The restorer's parts are the ones its profile loads: SD1.5 + the tile ControlNet, or
SD2.1 + DiffBIR's IRControlNet for a DiffBIR checkpoint (``paper``). Activations are the largest live tensors
of each model at the planned image size, from the formulas below. ``sedic-kit run``, ``eval`` and
``compare`` (per profile and rate) work in two phases: they encode every image with the vLLM pool
(``gpu_memory_utilization`` of the card, one engine for the whole phase), Grounding DINO and SAM
resident, then release them all (``Codec.release``: the vLLM engine is shut down) and decode
every image with the restorer's models alone. A phase holds the CUDA context, its models, and the largest activation peak among
them (they run one after another). CompressAI reference codecs run on CPU (bit-exact entropy
coding), so they are not in the plan.

``sedic-kit models check offline --memory`` prints the plan of a profile.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

from .profiles import Profile
from .roles import Role

GIB = 1 << 30
HALF = 2  # bytes per fp16 value
CUDA_CONTEXT = GIB // 2
"""CUDA context and allocator slack of one process."""
RTX_4090 = 24564 * (1 << 20)
"""The paper's card: 24564 MiB."""

PARAMS = {
    # describer: LLaVA-1.5 (Vicuna/LLaMA decoder + CLIP ViT-L/14-336 + projector)
    "llava-hf/llava-1.5-7b-hf": 7_063_427_072,
    # grounder: Swin backbone + BERT-base text encoder + detection transformer
    "IDEA-Research/grounding-dino-base": 232_315_264,
    "IDEA-Research/grounding-dino-tiny": 172_250_626,
    # segmenter: SAM (ViT-H / L / B image encoder, prompt encoder, mask decoder)
    "facebook/sam-vit-huge": 641_090_864,
    "facebook/sam-vit-large": 312_343_088,
    "facebook/sam-vit-base": 93_735_728,
    # restorer: SD1.5 / SD2.1-base UNet, VAE, text encoder (CLIP ViT-L/14, OpenCLIP ViT-H/14 less its last layer)
    "sd15-unet": 859_520_964,
    "sd15-vae": 83_653_863,
    "sd15-text": 123_060_480,
    "sd21-unet": 865_910_724,
    "sd21-vae": 83_653_863,
    "sd21-text": 340_387_840,
    # ControlNets: SD1.5's tile (from_unet layout), DiffBIR v2's IRControlNet on SD2.1
    "sd15-controlnet": 361_279_120,
    "sd21-ircontrolnet": 363_153_280,
    # TAESD (madebyollin/taesd) for the intermediate stage images of stage_images = "tiny"
    "taesd": 2_445_063,
}
"""Counts of :func:`sedic_plugins.shared.full_size.parameter_count`, for environments without its libraries."""
LLAVA_LAYERS, LLAVA_HIDDEN = 32, 4096
"""LLaVA-1.5-7B's decoder (keys and values per token per layer)."""
VLLM_OVERHEAD = 3 * GIB // 2
"""vLLM's profiled activation peak and CUDA graphs inside its pool."""


@dataclass(frozen=True)
class Item:
    """One model (or pool) on the GPU: resident bytes, and its activation peak while it runs."""

    name: str
    weights: int
    activations: int = 0
    note: str = ""


@dataclass(frozen=True)
class Phase:
    name: str
    items: tuple[Item, ...]

    @property
    def peak(self) -> int:
        """Everything resident, plus the largest activation peak (the models run one after another)."""
        return CUDA_CONTEXT + sum(i.weights for i in self.items) + max((i.activations for i in self.items), default=0)


@dataclass(frozen=True)
class VllmFraction:
    """The vLLM share of the card: the profile's, the least its engine needs, the most the encode phase leaves."""

    chosen: float
    needed: float
    allowed: float


@dataclass(frozen=True)
class MemoryPlan:
    profile: str
    card: int
    width: int
    height: int
    phases: tuple[Phase, ...]
    problems: tuple[str, ...]
    vllm: VllmFraction | None = None

    @property
    def peak(self) -> int:
        return max(p.peak for p in self.phases)

    @property
    def fits(self) -> bool:
        return self.peak <= self.card and not self.problems

    def lines(self) -> list[str]:
        """The plan as text a user reads."""
        out = [f"GPU memory plan of '{self.profile}' at {self.width}x{self.height} on a {gib(self.card)} card:"]
        for phase in self.phases:
            out.append(f"  {phase.name}: peak {gib(phase.peak)} (CUDA context {gib(CUDA_CONTEXT)})")
            for i in phase.items:
                act = f" + {gib(i.activations)} activations" if i.activations else ""
                out.append(f"    {i.name}: {gib(i.weights)}{act}{f'  ({i.note})' if i.note else ''}")
        verdict = "fits" if self.fits else "does NOT fit"
        out.append(f"  peak {gib(self.peak)} of {gib(self.card)}: {verdict}")
        if self.vllm is not None:
            v = self.vllm
            out.append(
                f"  describer.gpu_memory_utilization = {v.chosen:.2f}: vLLM needs {v.needed:.2f}, "
                f"the encode phase leaves room for up to {v.allowed:.2f}"
            )
        out += [f"  problem: {p}" for p in self.problems]
        return out


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def kv_cache_bytes(tokens: int, layers: int = LLAVA_LAYERS, hidden: int = LLAVA_HIDDEN) -> int:
    """Keys and values of ``tokens`` tokens in every layer, fp16."""
    return 2 * layers * hidden * HALF * tokens


def sam_activations(heads: int = 16, tokens: int = 64 * 64, mlp: int = 5120) -> int:
    """ViT image encoder at 1024x1024: a global-attention score matrix and its softmax, plus the MLP."""
    return 2 * heads * tokens * tokens * HALF + 4 * tokens * mlp * HALF


def sd_activations(width: int, height: int) -> int:
    """The largest of: CFG UNet + ControlNet forward (batch 2), the guidance backward, the VAE decode.

    UNet/ControlNet: skip features of the four levels (320, 640, 1280, 1280 channels at 1, 1/4,
    1/16, 1/64 of the latent cells; 3 per level, both networks) plus the widest feed-forward
    (GEGLU, 8 x 320 channels) with memory-efficient attention; the guidance backward keeps about
    ten times the forward's skip features for one sample; the VAE decoder holds ~6 tensors of 128
    channels at full resolution.
    """
    cells = (width // 8) * (height // 8)
    skips = 3 * (cells * 320 + cells // 4 * 640 + cells // 16 * 1280 + cells // 64 * 1280)
    forward = 2 * (2 * skips + cells * 8 * 320) * HALF
    backward = 10 * 2 * skips * HALF
    vae = 6 * width * height * 128 * HALF
    return max(forward, backward, vae)


def params(name: str) -> int:
    """Parameters of the full-size model ``name``: counted on the meta device, else recorded."""
    try:  # the built-in plugins' package, found like any plugin's (core does not depend on it)
        counter = importlib.import_module("sedic_plugins.shared.full_size").parameter_count
    except ImportError:
        return PARAMS[name]
    try:
        return int(counter(name))
    except ImportError:  # torch, diffusers or transformers missing
        return PARAMS[name]


def restorer_parts(model: str, controlnet: str, tiny_vae: bool = False) -> tuple[str, tuple[str, ...]]:
    """What an ``orag`` restorer loads: SD2.1 with DiffBIR's IRControlNet for a DiffBIR checkpoint or an
    SD2.x model, else SD1.5 with the tile ControlNet; TAESD beside them for tiny stage images."""
    ircontrolnet = controlnet.lower().endswith((".pth", ".pt", ".ckpt", ".safetensors", ".bin"))
    family = "sd21" if ircontrolnet or "2-1" in model or "sd21" in model else "sd15"
    cn = "sd21-ircontrolnet" if ircontrolnet else "sd15-controlnet"
    label = f"SD{'2.1' if family == 'sd21' else '1.5'} UNet + VAE + text encoder + {'IRControlNet' if ircontrolnet else 'tile ControlNet'}"
    taesd = ("taesd",) if tiny_vae else ()
    return label + " + TAESD" * tiny_vae, (f"{family}-unet", f"{family}-vae", f"{family}-text", cn, *taesd)


def plan(profile: Profile, card: int = RTX_4090, width: int = 768, height: int = 512) -> MemoryPlan:
    """The plan of ``profile``'s GPU models (encode phase, decode phase)."""
    problems: list[str] = []
    encode: list[Item] = []
    decode: list[Item] = []
    fraction = None
    roles = profile.roles
    describer = roles.get(Role.describer)
    if describer is not None and describer.plugin == "vllm":
        o = describer.options
        util = float(o.get("gpu_memory_utilization", 0.85))
        max_len = int(o.get("max_model_len", 4096))
        model = str(o.get("model", "llava-hf/llava-1.5-7b-hf"))
        weights = params(model if model in PARAMS else "llava-hf/llava-1.5-7b-hf") * HALF  # other models: planned as the 7B
        need = weights + kv_cache_bytes(max_len) + VLLM_OVERHEAD
        pool = int(util * card)
        note = f"gpu_memory_utilization {util} of the card; needs {gib(need)}: weights {gib(weights)}, KV cache for {max_len} tokens {gib(kv_cache_bytes(max_len))}, overhead {gib(VLLM_OVERHEAD)}"
        if pool < need:
            problems.append(f"describer.gpu_memory_utilization = {util} gives vLLM {gib(pool)}, below the {gib(need)} it needs")
        encode.append(Item(f"vLLM pool ({model})", pool, note=note))
        fraction = (util, need)
    grounder = roles.get(Role.grounder)
    if grounder is not None and grounder.plugin == "grounding-dino":
        model = str(grounder.options.get("model", "IDEA-Research/grounding-dino-base"))
        encode.append(Item(f"Grounding DINO ({model})", params(model if model in PARAMS else "IDEA-Research/grounding-dino-base") * HALF, GIB, "activations: Swin backbone at 800x1333, estimate"))
    segmenter = roles.get(Role.segmenter)
    if segmenter is not None and segmenter.plugin == "sam-hf":
        model = str(segmenter.options.get("model", "facebook/sam-vit-huge"))
        encode.append(Item(f"SAM ({model})", params(model if model in PARAMS else "facebook/sam-vit-huge") * HALF, sam_activations()))
    restorer = roles.get(Role.restorer)
    if restorer is not None and restorer.plugin == "orag":
        o = profile.build_role(Role.restorer).options  # the options with its preset applied; loads nothing
        label, parts = restorer_parts(str(getattr(o, "model")), str(getattr(o, "controlnet")), bool(getattr(o, "tiny_vae_choice", "")))
        count = sum(params(p) for p in parts)
        decode.append(Item(label, count * HALF, sd_activations(width, height), f"{count:,} parameters"))
    # `run`, `eval` and `compare` release the encoder's models (vLLM engine shut down) before the decode phase starts
    phases = (Phase("encode", tuple(encode)), Phase("decode (encoder models released)", tuple(decode)))
    vllm = None
    if fraction is not None:
        util, need = fraction
        beside = phases[0].peak - int(util * card)  # the encode phase without the pool
        vllm = VllmFraction(util, math.ceil(100 * need / card) / 100, math.floor(100 * (card - beside) / card) / 100)
    return MemoryPlan(profile.name, card, width, height, phases, tuple(problems), vllm)
