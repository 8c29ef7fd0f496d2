"""Full-size models with random weights, written in their published file layouts, loaded through the plugins' loaders.

Each case builds one architecture from its published config (:mod:`sedic_plugins.shared.full_size`),
writes it as the repository publishes it (diffusers/transformers folders with the published file
names; the tile ControlNet as ``diffusion_pytorch_model.bin``; DiffBIR's ``v2.pth`` in DiffBIR's
``ControlNet`` key layout; a CompressAI zoo ``.pth.tar``), loads it with the code the plugins use
(``load_checked``: no missing or unexpected key passes; DiffBIR's converter; CompressAI's
``from_state_dict``) and prints keys and parameters. One model at a time, deleted after.
LLaVA-1.5-7B (28 GB in fp32) is checked on the meta device only: its keys and shapes in the
published layout.

    nice -n 10 python benchmarks/full_size_layouts.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sedic_plugins.shared import full_size
from sedic_plugins.shared.hf import load_checked


def count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def hf_case(name: str, loader_cls: Callable[[], Any], safe: bool = True) -> Callable[[Path], tuple[int, int]]:
    """Save the random full-size ``name`` with ``save_pretrained`` and load it back with ``load_checked``."""

    def run(folder: Path) -> tuple[int, int]:
        model = full_size.builders()[name]()
        model.save_pretrained(folder, safe_serialization=safe)
        keys = len(model.state_dict())
        del model
        loaded = load_checked(loader_cls(), folder, name)
        return keys, count(loaded)

    return run


def diffbir_case(folder: Path) -> tuple[int, int]:
    """DiffBIR v2: an IRControlNet on SD2.1 saved as DiffBIR's ``ControlNet`` state dict (``v2.pth``), converted."""
    from sedic_plugins.restorers.orag.configs import unet_config
    from sedic_plugins.restorers.orag.ircontrolnet import IRControlNetModel, convert_cached, diffbir_state_dict

    os.environ["SEDIC_CACHE"] = str(folder / "cache")  # the converted copy goes with the case's folder
    state = diffbir_state_dict(full_size.controlnet("ircontrolnet"))
    torch.save(state, folder / "v2.pth")
    (folder / "sd21" / "unet").mkdir(parents=True)
    (folder / "sd21" / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", **unet_config("full", "sd21")}))
    converted = convert_cached(folder / "v2.pth", folder / "sd21")
    return len(state), count(load_checked(IRControlNetModel, converted, "restorer.controlnet"))


def compressai_case(folder: Path) -> tuple[int, int]:
    """cheng2020-attn quality 1 as a zoo file (``state_dict`` of the network), read by the plugin's reader."""
    import importlib

    from sedic_plugins.reference_codecs.compressai.codecs import import_compressai, read_state_dict

    import_compressai()  # without torchvision, as the plugin does
    zoo = importlib.import_module("compressai.zoo.image")
    net = zoo.model_architectures["cheng2020-attn"](*zoo.cfgs["cheng2020-attn"][1])
    net.update()
    torch.save(net.state_dict(), folder / "cheng2020_attn-mse-1-465f2b64.pth.tar")
    state = read_state_dict(folder / "cheng2020_attn-mse-1-465f2b64.pth.tar")
    return len(state), count(zoo.model_architectures["cheng2020-attn"].from_state_dict(state))


def llava_meta(_: Path) -> tuple[int, int]:
    """LLaVA-1.5-7B on the meta device: the keys in llava-hf's published layout (what vllm requires)."""
    from sedic_plugins.describers.hf_transformers import published_llava_key

    model = full_size.on_meta(full_size.builders()["llava-hf/llava-1.5-7b-hf"])
    published = {published_llava_key(k) for k in model.state_dict()}
    assert all(k.startswith(("language_model.", "vision_tower.vision_model.", "multi_modal_projector.")) for k in published)
    return len(published), count(model)


def cases() -> dict[str, Callable[[Path], tuple[int, int]]]:
    import transformers
    from diffusers import AutoencoderKL, AutoencoderTiny, ControlNetModel, UNet2DConditionModel

    return {
        "sd15-unet": hf_case("sd15-unet", lambda: UNet2DConditionModel),
        "sd15-vae": hf_case("sd15-vae", lambda: AutoencoderKL),
        "sd15-text": hf_case("sd15-text", lambda: transformers.CLIPTextModel),
        "sd15-controlnet (tile, .bin)": hf_case("sd15-controlnet", lambda: ControlNetModel, safe=False),
        "sd21-unet": hf_case("sd21-unet", lambda: UNet2DConditionModel),
        "sd21-text": hf_case("sd21-text", lambda: transformers.CLIPTextModel),
        "sd21-ircontrolnet (DiffBIR v2.pth)": diffbir_case,
        "taesd (madebyollin/taesd)": hf_case("taesd", lambda: AutoencoderTiny),
        "facebook/sam-vit-huge": hf_case("facebook/sam-vit-huge", lambda: transformers.SamModel),
        "IDEA-Research/grounding-dino-base": hf_case("IDEA-Research/grounding-dino-base", lambda: transformers.AutoModelForZeroShotObjectDetection),
        "cheng2020-attn-mse-1 (zoo .pth.tar)": compressai_case,
        "llava-hf/llava-1.5-7b-hf (meta device)": llava_meta,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="case names (prefixes)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print("| model (published layout) | keys written | parameters loaded | seconds |")
    print("| --- | ---: | ---: | ---: |")
    for name, run in cases().items():
        if args.only and not any(name.startswith(p) for p in args.only):
            continue
        folder = Path(tempfile.mkdtemp(prefix="full-size-"))
        start = time.perf_counter()
        try:
            keys, params = run(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"| {name} | {keys:,} | {params:,} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
