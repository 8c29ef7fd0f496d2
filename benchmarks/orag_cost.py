"""Cost of ORAG (Algorithm 1) against plain ControlNet sampling with the same number of steps.

Full-size SD1.5 + ControlNet architectures with random weights (weights do not change cost).
Three variants run in one process, on the same image and masks:

* ``plain``: diffusers' StableDiffusionControlNetPipeline, J * object_steps + global_steps steps;
* ``orag``: the ``orag`` restorer's sampler with its defaults (attention guidance for t > T');
* ``orag-unguided``: the same stages with guidance off (T' = 1000), to split the overhead into
  multi-stage decoding (extra VAE passes, blending) and attention guidance.

Peak memory is the process's resident-set growth during a variant (sampled every 5 ms) on CPU and
``torch.cuda.max_memory_allocated`` on CUDA.

    python benchmarks/orag_cost.py --size 256 --objects 1 --threads 1
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from sedic_kit.payload import SemanticObject
from sedic_plugins.orag.options import OragOptions
from sedic_plugins.orag.sampler import OragSampler
from sedic_plugins.orag.tiny import random_sd15


def rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def measure(fn: Callable[[], Any], device: torch.device) -> tuple[float, float]:
    """Seconds and peak memory growth (MiB) of ``fn()``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start, (torch.cuda.max_memory_allocated() - base) / 2**20
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    return seconds, (max(peak[0], rss()) - base) / 2**20


def scene(width: int, height: int, objects: int) -> tuple[Image.Image, list[SemanticObject]]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, 128 + 60 * np.sin(x / 9.0)], -1) + rng.normal(0, 8, (height, width, 3))
    boxes = [(0.05, 0.1, 0.5, 0.9), (0.45, 0.05, 0.95, 0.6), (0.3, 0.5, 0.9, 0.95)]
    objs = []
    for i, (x0, y0, x1, y1) in enumerate(boxes[:objects]):
        mask = np.zeros((height, width), dtype=bool)
        mask[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)] = True
        objs.append(SemanticObject(f"object {i}", f"a detailed object number {i}", mask=mask))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), objs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="256", help="WIDTHxHEIGHT or one side (default 256)")
    ap.add_argument("--objects", type=int, default=1, help="J (default 1)")
    ap.add_argument("--object-steps", type=int, default=OragOptions().object_steps)
    ap.add_argument("--global-steps", type=int, default=OragOptions().global_steps)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--variants", default="plain,orag,orag-unguided")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, _, height = args.size.partition("x")
    w, h = int(width), int(height or width)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)

    start = time.perf_counter()
    parts = random_sd15("full")
    if (device.type, dtype) != ("cpu", torch.float32):
        for model in (parts.text_encoder, parts.vae, parts.unet, parts.controlnet):
            model.to(device=device, dtype=dtype)
    print(f"built random SD1.5 + tile ControlNet in {time.perf_counter() - start:.0f} s")
    image, objects = scene(w, h, args.objects)
    steps = args.objects * args.object_steps + args.global_steps
    options = OragOptions(object_steps=args.object_steps, global_steps=args.global_steps)
    caption = "a photo of several detailed objects on a smooth background"

    def plain() -> None:
        from diffusers import DDIMScheduler, StableDiffusionControlNetPipeline

        pipe = StableDiffusionControlNetPipeline(
            vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
            controlnet=parts.controlnet, scheduler=DDIMScheduler.from_config(parts.scheduler_config),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        pipe(caption, image=image, num_inference_steps=steps, guidance_scale=options.cfg_scale,
             negative_prompt=options.negative_prompt, height=h, width=w, output_type="np",
             generator=torch.Generator().manual_seed(0))

    guided_steps: list[int] = []

    def orag(opts: OragOptions) -> Callable[[], None]:
        def run() -> None:
            result = OragSampler(parts, opts).run(image, caption, objects)
            guided_steps.append(sum(len(s.energies) for s in result.stages))
        return run

    variants = {
        "plain": plain,
        "orag": orag(options),
        "orag-unguided": orag(options.model_copy(update={"guidance_threshold": 1000})),
    }
    results: dict[str, tuple[float, float]] = {}
    for name in args.variants.split(","):
        results[name] = measure(variants[name], device)
        print(f"{name}: {results[name][0]:.1f} s, peak +{results[name][1]:.0f} MiB", flush=True)
    base = results.get("plain")
    print(f"\n{w}x{h}, J={args.objects}, {args.object_steps} object + {args.global_steps} global steps "
          f"({steps} sampler steps each, CFG {options.cfg_scale}), guided steps {guided_steps[:1]}, "
          f"{args.device} {args.dtype}, {torch.get_num_threads()} threads\n")
    print("| variant | time (s) | x plain | peak memory (MiB) |\n| --- | --- | --- | --- |")
    for name, (seconds, mib) in results.items():
        ratio = f"{seconds / base[0]:.2f}" if base else "-"
        print(f"| {name} | {seconds:.1f} | {ratio} | {mib:.0f} |")


if __name__ == "__main__":
    main()
