"""DiffBIR's IRControlNet in diffusers' model classes, and its checkpoint converter.

IRControlNet (Lin et al., DiffBIR; the paper's restorer backbone) is a ControlNet whose input is
the noisy latent concatenated with the condition latent cf = VAE(I): its first convolution takes
[z_t, cf] (4 + 4 channels) and it has no pixel-space conditioning embedding. Its 13 zero-conv
outputs are added to the UNet's skip connections and middle block exactly as a ControlNet's.

A convolution over a channel concatenation is the sum of convolutions over the parts, so the
model is diffusers' :class:`~diffusers.ControlNetModel` with its ``conv_in`` taking z_t (the
first 4 input channels of DiffBIR's conv) and its conditioning embedding replaced by one
bias-free 3x3 convolution taking cf (the last 4); the forward pass is diffusers' own.

DiffBIR checkpoints (``v1_general.pth``, ``v1_face.pth``, ``v2.pth``: the state dict of
``diffbir.model.ControlNet``, LDM key layout ``input_blocks.*``, ``zero_convs.*``,
``middle_block_out.*``) are renamed with diffusers' own LDM ControlNet converter; every tensor
must be used exactly once and fit the model built from the SD2.1 UNet's config.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import ControlNetModel
from diffusers.models.controlnets.controlnet import ControlNetOutput
from torch import nn

from sedic_kit.errors import ModelNotFoundError, SedicError
from sedic_kit.models import cache_root

CONVERTED_VERSION = 1


class IRControlNetModel(ControlNetModel):
    """ControlNet on [z_t, cf]: ``conditioning_channels`` is cf's channel count (4, a VAE latent).

    ``conditioning_scale`` may be one float or 13 per-output scales (DiffBIR's ``control_scales``:
    the 12 down residuals, then the middle block).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.controlnet_cond_embedding = nn.Conv2d(
            self.config.conditioning_channels, self.config.block_out_channels[0], kernel_size=3, padding=1, bias=False
        )

    def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, controlnet_cond: Any,  # type: ignore[override]
                conditioning_scale: float | Sequence[float] = 1.0, return_dict: bool = True, **kwargs: Any) -> Any:
        if isinstance(conditioning_scale, (int, float)):
            return super().forward(sample, timestep, encoder_hidden_states, controlnet_cond, float(conditioning_scale),
                                   return_dict=return_dict, **kwargs)
        scales = list(conditioning_scale)
        down, mid = super().forward(sample, timestep, encoder_hidden_states, controlnet_cond, 1.0, return_dict=False, **kwargs)
        if len(scales) != len(down) + 1:
            raise SedicError(f"this IRControlNet has {len(down) + 1} outputs; got {len(scales)} control scales")
        down, mid = [d * s for d, s in zip(down, scales)], mid * scales[-1]
        return ControlNetOutput(down_block_res_samples=tuple(down), mid_block_res_sample=mid) if return_dict else (down, mid)


# diffusers builds a model from its config through the __init__ signature: keep ControlNetModel's
IRControlNetModel.__init__.__signature__ = inspect.signature(ControlNetModel.__init__)  # type: ignore[attr-defined]


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Tensors of a ``.pth``/``.ckpt`` (``torch.load`` with ``weights_only``) or ``.safetensors`` file;
    unwraps ``state_dict``, ``module.`` and a full checkpoint's ``control_model.`` prefix."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unreadable file: pickle, zip and safetensors errors differ)
        raise SedicError(f"restorer.controlnet: cannot read {path} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SedicError(f"restorer.controlnet: {path} is not a state dict of tensors")
    for prefix in ("module.", "control_model."):
        if "time_embed.0.weight" not in state and any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def from_diffbir(state: dict[str, Any], unet: Any) -> IRControlNetModel:
    """Build the IRControlNet for ``unet`` (an SD2.1 ``UNet2DConditionModel``) from a DiffBIR state dict.

    Raises one line if a tensor is left over, one is missing or a shape does not fit.
    """
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    if "input_blocks.0.0.weight" not in state or "time_embed.0.weight" not in state:
        raise SedicError("restorer.controlnet: not a DiffBIR IRControlNet checkpoint (no input_blocks.0.0 / time_embed)")
    converted = {k: v for k, v in convert_controlnet_checkpoint(state, dict(unet.config)).items() if v is not None}
    used = {id(v) for v in converted.values()}
    left = sorted(k for k, v in state.items() if id(v) not in used)
    if left or len(converted) != len(state):
        raise SedicError(f"restorer.controlnet: {len(left)} checkpoint tensors do not map to the model (first: {left[:1]})")
    z = unet.config.in_channels
    first = converted.pop("conv_in.weight")
    if first.ndim != 4 or first.shape[1] <= z:
        raise SedicError(f"restorer.controlnet: first convolution takes {first.shape[1] if first.ndim == 4 else '?'} channels; an IRControlNet takes {z} + condition")
    converted["conv_in.weight"], converted["controlnet_cond_embedding.weight"] = first[:, :z], first[:, z:]
    model = IRControlNetModel.from_unet(unet, conditioning_channels=first.shape[1] - z, load_weights_from_unet=False)
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise SedicError(f"restorer.controlnet: the checkpoint does not fit the model's UNet config ({detail})") from None
    return model


def converted_dir(path: Path, unet_root: Path) -> Path:
    """Where the diffusers-format copy of ``path`` for the UNet config in ``unet_root`` is cached."""
    stat = path.stat()
    config = (unet_root / "unet" / "config.json").read_bytes()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v{CONVERTED_VERSION}|".encode() + config
    return cache_root() / "converted" / f"{path.stem}-{hashlib.sha256(key).hexdigest()[:16]}"


def convert_cached(path: Path, unet_root: Path) -> Path:
    """Convert a DiffBIR checkpoint once (written atomically under ``$SEDIC_CACHE/converted``)."""
    from diffusers import UNet2DConditionModel

    if not path.is_file():
        raise ModelNotFoundError(f"restorer.controlnet: {path} does not exist")
    target = converted_dir(path, unet_root)
    if (target / "config.json").is_file():
        return target
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(unet_root, subfolder="unet"))
    model = from_diffbir(read_checkpoint(path), unet)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# -- the inverse (diffusers -> DiffBIR layout): writes DiffBIR checkpoints for tests and comparisons --
_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))


def _ldm_key(key: str, per_block: int) -> str:
    def resnet(rest: str) -> str:
        for new, old in _RESNET:
            if rest.startswith(new + "."):
                return old + rest[len(new):]
        return rest

    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "controlnet_mid_block": "middle_block_out.0"}
    for new, old in fixed.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    if m := re.match(r"controlnet_down_blocks\.(\d+)\.(.*)", key):
        return f"zero_convs.{m[1]}.0.{m[2]}"
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        index = 1 + int(m[1]) * (per_block + 1) + int(m[3])
        return f"input_blocks.{index}.0.{resnet(m[4])}" if m[2] == "resnets" else f"input_blocks.{index}.1.{m[4]}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * (per_block + 1)}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[2])}.{resnet(m[3])}" if m[1] == "resnets" else f"middle_block.1.{m[3]}"
    raise KeyError(key)


def diffbir_state_dict(model: IRControlNetModel) -> dict[str, Any]:
    """``model``'s weights in DiffBIR's ``ControlNet`` layout (what ``v2.pth`` holds)."""
    state = model.state_dict()
    per_block = model.config.layers_per_block
    out = {"input_blocks.0.0.weight": torch.cat([state.pop("conv_in.weight"), state.pop("controlnet_cond_embedding.weight")], 1)}
    out["input_blocks.0.0.bias"] = state.pop("conv_in.bias")
    out.update({_ldm_key(k, per_block): v.clone() for k, v in state.items()})
    return out
