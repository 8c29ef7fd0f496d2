"""The published few-step LoRAs' key layout through our loader (``load_lora``): tiny UNets on CPU with
random LoRA tensors in that layout, and the full-size SD1.5 / SD2.1-base UNets on the meta device.

LCM-LoRA (``latent-consistency/lcm-lora-sdv1-5``) is kohya-style with diffusers module names:
``lora_unet_<module path, dots as underscores>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``,
UNet only, rank 64, over the 14 module kinds of :data:`LCM_LORA_TARGETS` (sources in BENCHMARKS.md,
"LoRA key layouts (issue 23)"). TCD's layout is not established; the same layout is checked on SD2.1
(linear ``proj_in`` / ``proj_out``), and diffusers' own peft layout is the tiny LoRAs' (tests/test_orag.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from safetensors.torch import save_file  # noqa: E402

from sedic_kit.errors import ProfileError  # noqa: E402
from sedic_kit.payload import Payload  # noqa: E402
from sedic_plugins.restorers.orag import OragRestorer  # noqa: E402
from sedic_plugins.restorers.orag.components import LORA_ADAPTER, Lora, load_sd15  # noqa: E402
from sedic_plugins.shared import full_size  # noqa: E402

LCM_LORA_TARGETS = (
    "to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
    "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj",
)  # fmt: skip
"""``target_modules`` of LCM-LoRA's training script (luosiallen/latent-consistency-model,
LCM_Training_Script/consistency_distillation/train_lcm_distill_lora_sd_wds.py)."""
BACKBONES = {"sd15": ("tiny/sd15", "tiny/sd15-tile"), "sd21": ("tiny/sd21", "tiny/diffbir-v2")}
RANK, ALPHA, SCALE = 4, 2.0, 0.5  # alpha != rank and scale != 1: both factors of the delta are checked

Tensor = Any
Make = Callable[[tuple[int, ...]], Tensor]


def targeted(unet: Any) -> dict[str, Any]:
    """The UNet layers LCM-LoRA adapts, by peft's rule (a target names the module or its dotted suffix)."""
    return {n: m for n, m in unet.named_modules() if any(n == t or n.endswith(f".{t}") for t in LCM_LORA_TARGETS)}


def kohya_key(module: str) -> str:
    return "lora_unet_" + module.replace(".", "_")


def kohya_layout(modules: dict[str, Any], rank: int, alpha: float, make: Make) -> dict[str, Tensor]:
    """LCM-LoRA's key layout over ``modules``, with peft's A / B shapes (a convolution's down
    projection has its kernel, its up projection is 1x1) and one scalar alpha per module."""
    state = {}
    for name, module in modules.items():
        out_dim, in_dim, *kernel = module.weight.shape
        up_kernel = [1] * len(kernel)
        state[f"{kohya_key(name)}.lora_down.weight"] = make((rank, in_dim, *kernel))
        state[f"{kohya_key(name)}.lora_up.weight"] = make((out_dim, rank, *up_kernel))
        state[f"{kohya_key(name)}.alpha"] = torch.tensor(alpha, device="cpu")  # a real scalar, on the meta device too
    return state


def random_make(seed: int = 0) -> Make:
    gen = torch.Generator().manual_seed(seed)
    return lambda shape: torch.randn(shape, generator=gen) * 0.1


def save_lora(directory: Path, state: dict[str, Tensor]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state, str(directory / "pytorch_lora_weights.safetensors"))
    return str(directory)


def base(family: str) -> Any:
    return load_sd15(*BACKBONES[family], "cpu", "float32")


@pytest.mark.parametrize("family", sorted(BACKBONES))
def test_lcm_lora_layout_fuses_every_targeted_layer_by_its_exact_delta(family: str, tmp_path: Path) -> None:
    before = {n: p.detach().clone() for n, p in base(family).unet.named_parameters()}
    modules = targeted(base(family).unet)
    kinds = Counter(next(t for t in LCM_LORA_TARGETS if n == t or n.endswith(f".{t}")) for n in modules)
    assert set(kinds) == set(LCM_LORA_TARGETS)  # the tiny UNet has every kind the published file adapts
    state = kohya_layout(modules, RANK, ALPHA, random_make())
    parts = load_sd15(*BACKBONES[family], "cpu", "float32", Lora(save_lora(tmp_path / "lcm", state), scale=SCALE))
    assert not parts.adapter
    after = dict(parts.unet.named_parameters())
    assert not any("lora" in n for n in after)  # fused, the LoRA layers unloaded
    for name in modules:
        down, up = state[f"{kohya_key(name)}.lora_down.weight"], state[f"{kohya_key(name)}.lora_up.weight"]
        weight = before[f"{name}.weight"]
        delta = (up.flatten(1) @ down.flatten(1)).reshape(weight.shape)
        torch.testing.assert_close(after[f"{name}.weight"], weight + SCALE * ALPHA / RANK * delta, rtol=1e-5, atol=1e-6)
    untouched = set(before) - {f"{name}.weight" for name in modules}
    assert untouched and all(torch.equal(after[n], before[n]) for n in untouched)


def test_lcm_lora_layout_kept_as_an_adapter_covers_every_targeted_layer(tmp_path: Path) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    modules = targeted(base("sd15").unet)
    spec = save_lora(tmp_path / "lcm", kohya_layout(modules, RANK, ALPHA, random_make()))
    parts = load_sd15(*BACKBONES["sd15"], "cpu", "float32", Lora(spec, scale=SCALE, fuse=False))
    assert parts.adapter
    layers = {n: m for n, m in parts.unet.named_modules() if isinstance(m, BaseTunerLayer)}
    assert set(layers) == set(modules)
    assert [m.scaling[LORA_ADAPTER] for m in layers.values()] == pytest.approx([SCALE * ALPHA / RANK] * len(layers))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a safetensors file", "is not a LoRA file diffusers reads"),
        ({"unet.conv_in.weight": (8, 4, 3, 3)}, "is not a LoRA: it holds 'unet.conv_in.weight'"),
        ({"conv_in.lora_A.weight": (4, 4, 3, 3), "conv_in.lora_B.weight": (8, 4, 1, 1)}, "has no tensors for the UNet of 'tiny/sd15'"),
    ],
    ids=["unreadable", "plain-weights", "no-unet-prefix"],
)
def test_files_that_are_no_lora_stop_with_one_line(content: Any, message: str, tmp_path: Path) -> None:
    if isinstance(content, bytes):
        tmp_path.joinpath("pytorch_lora_weights.safetensors").write_bytes(content)
        spec = str(tmp_path)
    else:
        spec = save_lora(tmp_path, {key: torch.zeros(shape) for key, shape in content.items()})
    with pytest.raises(ProfileError, match=f"restorer.lora: '{re.escape(spec)}' {message}") as err:
        load_sd15(*BACKBONES["sd15"], "cpu", "float32", Lora(spec))
    assert "\n" not in str(err.value)


def synthetic() -> Any:
    from PIL import Image

    return Image.new("RGB", (64, 64), (90, 120, 150))


def extra_keys(case: str, modules: dict[str, Any]) -> dict[str, Tensor]:
    """Keys a UNet LoRA for SD1.5 must not have: the text encoder's (kohya ``lora_te_``), or layers
    the UNet lacks (a second transformer block, as SDXL's deeper blocks have)."""
    make = random_make(1)
    if case == "text-encoder":  # the tiny CLIP text tower: hidden 16, MLP 32
        key = "lora_te_text_model_encoder_layers_0_mlp_fc1"
        return {f"{key}.lora_down.weight": make((RANK, 16)), f"{key}.lora_up.weight": make((32, RANK)), f"{key}.alpha": torch.tensor(ALPHA)}
    to_q = next(n for n in modules if n.endswith("transformer_blocks.0.attn1.to_q"))
    missing = to_q.replace("transformer_blocks.0", "transformer_blocks.1")
    return kohya_layout({missing: modules[to_q]}, RANK, ALPHA, make)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("text-encoder", "also changes the text encoder; only UNet LoRAs"),
        ("missing-layer", r"does not load into restorer.model 'tiny/sd15' \(the UNet took 282 LoRA tensors, the file has 284\)"),
    ],
)
def test_unusable_lora_files_stop_with_one_profile_error_line(case: str, message: str, tmp_path: Path) -> None:
    modules = targeted(base("sd15").unet)
    state = {**kohya_layout(modules, RANK, ALPHA, random_make()), **extra_keys(case, modules)}
    spec = save_lora(tmp_path / case, state)
    restorer = OragRestorer(model="tiny/sd15", controlnet="tiny/sd15-tile", lora=spec, scheduler="lcm")
    with pytest.raises(ProfileError, match=f"restorer.lora: '{re.escape(spec)}' {message}") as err:
        restorer.restore(synthetic(), Payload(64, 64, "x"))
    assert "\n" not in str(err.value)


def test_a_lora_of_only_foreign_layers_stops_with_one_line(tmp_path: Path) -> None:
    modules = targeted(base("sd15").unet)
    foreign = {k.replace("transformer_blocks.0", "transformer_blocks.1"): m for k, m in modules.items() if "transformer_blocks.0" in k}
    spec = save_lora(tmp_path / "foreign", kohya_layout(foreign, RANK, ALPHA, random_make()))
    with pytest.raises(ProfileError, match=f"restorer.lora: '{re.escape(spec)}' does not load into restorer.model 'tiny/sd15' ") as err:
        load_sd15(*BACKBONES["sd15"], "cpu", "float32", Lora(spec))
    assert "\n" not in str(err.value)


PUBLISHED_KINDS = {  # module kinds LCM-LoRA's targets match in the full-size SD1.5 and SD2.1-base UNets
    "to_q": 32, "to_k": 32, "to_v": 32, "to_out.0": 32, "proj_in": 16, "proj_out": 16, "ff.net.0.proj": 16,
    "ff.net.2": 16, "conv1": 22, "conv2": 22, "time_emb_proj": 22, "conv_shortcut": 14,
    "downsamplers.0.conv": 3, "upsamplers.0.conv": 3,
}  # fmt: skip
PUBLISHED_PARAMETERS = {"sd15": 67_252_224, "sd21": 67_776_512}  # at rank 64; x 2 bytes (fp16) = 134.5 / 135.6 MB


@pytest.mark.parametrize("family", ["sd15", "sd21"])
def test_full_size_unet_has_every_layer_the_published_layout_adapts(family: str) -> None:
    """The full-size UNet on the meta device: LCM-LoRA's layout at rank 64 (834 keys: 278 layers x
    down, up, alpha) converts through diffusers' LoRA loader into peft layers on exactly those layers."""
    from diffusers import StableDiffusionPipeline
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import get_peft_model_state_dict

    unet = full_size.on_meta(lambda: full_size.sd_unet(family))
    modules = targeted(unet)
    assert Counter(next(t for t in LCM_LORA_TARGETS if n == t or n.endswith(f".{t}")) for n in modules) == PUBLISHED_KINDS
    with torch.device("meta"):
        state = kohya_layout(modules, 64, 8.0, torch.empty)
    assert len(state) == 834 and sum(v.numel() for k, v in state.items() if not k.endswith(".alpha")) == PUBLISHED_PARAMETERS[family]
    loader: Any = StableDiffusionPipeline
    converted, alphas = loader.lora_state_dict(state)
    assert all(k.startswith("unet.") for k in converted) and len(converted) == 556 and len(alphas) == 278
    loader.load_lora_into_unet(converted, alphas, unet, adapter_name=LORA_ADAPTER)
    assert {n for n, m in unet.named_modules() if isinstance(m, BaseTunerLayer)} == set(modules)
    assert len(get_peft_model_state_dict(unet, adapter_name=LORA_ADAPTER)) == len(converted)
