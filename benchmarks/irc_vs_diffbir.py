"""Our IRControlNet + SD2.1 UNet against DiffBIR's own modules, on the same random weights.

DiffBIR's ``ControlNet`` and ``ControlledUnetModel`` (from a checkout of XPixelGroup/DiffBIR, not
installed: its ``diffbir/model`` modules are loaded without the package's ``__init__``, which
imports unrelated restoration models) are built from a config, given seeded random weights, and
their state dicts go through our user path: the ControlNet's as a ``v2.pth`` file converted by
``convert_cached``, the UNet's with diffusers' LDM converter (as a single-file SD2.1 would be).
Both sides then run the same inputs; the script prints the largest absolute difference of every
ControlNet output and of the UNet's noise prediction, in float32 on CPU.

    python benchmarks/irc_vs_diffbir.py --diffbir /path/to/DiffBIR [--size small|sd21-narrow|sd21]

Needs einops, omegaconf and ftfy importable (DiffBIR's own imports).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import types
from pathlib import Path

import torch

SIZES = {
    # DiffBIR hard-codes GroupNorm(32): the smallest channels it accepts
    "small": {"model_channels": 32, "channel_mult": (1, 2, 2, 2), "num_res_blocks": 1, "attention_resolutions": (4, 2),
              "num_head_channels": 16, "context_dim": 64, "latent": 16},
    # SD2.1's structure (2 res blocks per level, attention at 3 levels) at 1/10 of its width
    "sd21-narrow": {"model_channels": 32, "channel_mult": (1, 2, 4, 4), "num_res_blocks": 2, "attention_resolutions": (4, 2, 1),
                    "num_head_channels": 16, "context_dim": 64, "latent": 32},
    # configs/inference/cldm.yaml: SD2.1-base and DiffBIR v2 (about 12 GB of memory)
    "sd21": {"model_channels": 320, "channel_mult": (1, 2, 4, 4), "num_res_blocks": 2, "attention_resolutions": (4, 2, 1),
             "num_head_channels": 64, "context_dim": 1024, "latent": 32},
}


def diffbir_modules(root: Path) -> types.ModuleType:
    """``diffbir.model.controlnet`` from a checkout, without running ``diffbir/model/__init__.py``."""
    for name, path in (("diffbir", root / "diffbir"), ("diffbir.model", root / "diffbir" / "model")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    return importlib.import_module("diffbir.model.controlnet")


def diffusers_unet_config(size: dict) -> dict:
    """The diffusers UNet with DiffBIR's architecture for ``size``."""
    channels = [size["model_channels"] * m for m in size["channel_mult"]]
    attn = [2**level in size["attention_resolutions"] for level in range(len(channels))]
    return {
        "sample_size": 64, "cross_attention_dim": size["context_dim"], "use_linear_projection": True,
        "block_out_channels": tuple(channels), "layers_per_block": size["num_res_blocks"],
        "attention_head_dim": tuple(c // size["num_head_channels"] for c in channels),
        "down_block_types": tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        "up_block_types": tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
    }


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Perturb every parameter (zero-initialised convolutions included) with seeded noise."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diffbir", type=Path, required=True, help="a checkout of XPixelGroup/DiffBIR")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    from sedic_plugins.restorers.orag.ircontrolnet import IRControlNetModel, convert_cached

    theirs = diffbir_modules(args.diffbir.resolve())
    size = SIZES[args.size]
    common = {"image_size": 32, "in_channels": 4, "model_channels": size["model_channels"], "num_res_blocks": size["num_res_blocks"],
              "attention_resolutions": list(size["attention_resolutions"]), "channel_mult": list(size["channel_mult"]),
              "num_head_channels": size["num_head_channels"], "use_spatial_transformer": True, "use_linear_in_transformer": True,
              "transformer_depth": 1, "context_dim": size["context_dim"], "legacy": False}
    torch.manual_seed(0)
    their_cn = theirs.ControlNet(hint_channels=4, **common).eval()
    their_unet = theirs.ControlledUnetModel(out_channels=4, **common).eval()
    randomize(their_cn, 1)
    randomize(their_unet, 2)

    config = diffusers_unet_config(size)
    with tempfile.TemporaryDirectory() as tmp:
        model_root = Path(tmp, "sd21")
        unet = UNet2DConditionModel(**config)
        unet_state = convert_ldm_unet_checkpoint({f"model.diffusion_model.{k}": v for k, v in their_unet.state_dict().items()}, config)
        unet.load_state_dict(unet_state, strict=True)
        unet.save_pretrained(model_root / "unet")
        torch.save(their_cn.state_dict(), Path(tmp, "v2.pth"))
        ours_cn = IRControlNetModel.from_pretrained(convert_cached(Path(tmp, "v2.pth"), model_root)).eval()
    unet.eval()

    gen = torch.Generator().manual_seed(3)
    side = size["latent"]
    z, cf = torch.randn(1, 4, side, side, generator=gen), torch.randn(1, 4, side, side, generator=gen)
    context = torch.randn(1, 77, size["context_dim"], generator=gen)
    t = torch.tensor([537])
    with torch.no_grad():
        control = their_cn(x=z, hint=cf, timesteps=t, context=context)
        their_eps = their_unet(x=z, timesteps=t, context=context, control=list(control), only_mid_control=False)
        down, mid = ours_cn(z, t, context, cf, return_dict=False)
        our_eps = unet(z, t, encoder_hidden_states=context, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid, return_dict=False)[0]
    diffs = [float((a - b).abs().max()) for a, b in zip(control, [*down, mid])]
    scale = max(float(c.abs().max()) for c in control)
    print(f"size={args.size} latent={side}x{side} ControlNet outputs={len(control)} (max |output| {scale:.3g})")
    print(f"ControlNet max abs diff per output: {' '.join(f'{d:.2e}' for d in diffs)}")
    print(f"ControlNet max abs diff: {max(diffs):.3e}")
    print(f"UNet eps max abs diff: {float((their_eps - our_eps).abs().max()):.3e} (max |eps| {float(their_eps.abs().max()):.3g})")


if __name__ == "__main__":
    main()
