"""Cost of ORAG (Algorithm 1) against plain ControlNet sampling and against the paper's J = 0 baseline.

Full-size SD1.5 + tile ControlNet architectures with random weights (weights do not change cost).

1. FLOPs, analytically: each model call is counted once on the meta device at the chosen size
   (``torch.utils.flop_counter``: the CFG step of UNet + ControlNet, the guidance forward and
   backward, VAE encode/decode, the text encoder), then multiplied by how often each variant makes
   it. Exact for the architecture, independent of the machine.
2. Time and memory (``--repeats N``): every run is its own process (so each variant's peak memory
   is its own: resident-set growth over the built models on CPU, ``torch.cuda.max_memory_allocated``
   on CUDA); runs are interleaved A B C C B A ... so that every variant sees the same machine load;
   wall and CPU seconds, min / median / max over the repeats.

Variants: ``plain`` (diffusers' StableDiffusionControlNetPipeline, J * object_steps + global_steps
DDIM steps), ``orag`` (the restorer's sampler, guidance for t > T'), ``orag-unguided`` (T' = 1000:
the multi-stage overhead alone), ``j0`` (the paper's baseline: the global stage only, global_steps).

Decoders (``--decoders paper,offline,offline-fast``): the restorer of each shipped profile as it
is (steps, schedulers, CFG, guidance, control; ``resolution`` 0 so that every decoder works at
``--size``) on its own backbone (``paper``: SD2.1-base + IRControlNet on the latent; the others:
SD1.5 + tile ControlNet). A LoRA that every stage uses is fused into the UNet, so it costs nothing
per call and is left out. Model calls are counted on a real run of the same sampler with tiny
models (UNet evaluations: batch items through the UNet, a CFG step counting 2 and a guided step's
truncated forward 1), then weighted with the full-size per-call FLOPs.

    python benchmarks/orag_cost.py --size 768x512 --objects 1            # FLOP table only
    python benchmarks/orag_cost.py --size 64 --objects 1 --repeats 2 --threads 1
    python benchmarks/orag_cost.py --device cuda --size 768x512 --repeats 3   # on a GPU (float16)
    python benchmarks/orag_cost.py --size 768x512 --objects 3 --decoders paper,offline,offline-fast
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from PIL import Image

from sedic_kit.payload import SemanticObject
from sedic_kit.profiles import load_profile
from sedic_kit.roles import Role
from sedic_plugins.restorers.orag.canvas import Canvas
from sedic_plugins.restorers.orag.components import SD15, is_checkpoint_file
from sedic_plugins.restorers.orag.configs import SCHEDULER_CONFIG
from sedic_plugins.restorers.orag.options import OragOptions
from sedic_plugins.restorers.orag.sampler import OragSampler
from sedic_plugins.restorers.orag.tiny import random_sd15

VARIANTS = ("plain", "orag", "orag-unguided", "j0")
DECODERS = ("paper", "paper-fast", "offline", "offline-fast")
PAPER_TABLE_VI = 2.332
"""Seconds per image of the paper's decoder, 20 steps on an RTX 4090 (Table VI)."""
CAPTION = "a photo of several detailed objects on a smooth background"


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


def guided_steps(options: OragOptions) -> int:
    """Object-stage steps with t > T' (where attention guidance runs)."""
    sampler = OragSampler(SimpleNamespace(scheduler_config=SCHEDULER_CONFIG, device="cpu"), options)  # type: ignore[arg-type]
    _, timesteps = sampler.scheduler(options.object_steps, options.stage_schedulers[0])
    return sum(int(t) > options.guidance_threshold for t in timesteps)


def flop_table(width: int, height: int, objects: int, options: OragOptions) -> dict[str, float]:
    """FLOPs of each variant, from per-call counts on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        parts = random_sd15("full")
    sampler = OragSampler(parts, options)
    canvas = Canvas(width, height)

    def count(fn: Any) -> int:
        with FlopCounterMode(display=False) as mode:
            fn()
        return mode.get_total_flops()

    _, objs = scene(width, height, 1)
    with torch.no_grad():
        pixels = torch.zeros(1, 3, *canvas.padded, device="meta")
        z = torch.zeros(1, 4, *canvas.latent, device="meta")
        negative = sampler.embed(options.negative_prompt)
        text = count(lambda: sampler.embed(CAPTION))
        encode = count(lambda: sampler.encode(pixels))
        decode = count(lambda: sampler.decode(z))
        cond = sampler.object_condition(pixels, None, objs[0], canvas, negative)
        t = cond.timesteps[0]
        step = count(lambda: sampler.predict(cond, z, t))

    def guide() -> None:  # sampler.guide, with backward() (autograd.grad trips the counter's hooks)
        latent = z.detach().requires_grad_(True)
        sampler.energy(cond, latent, t).backward()

    guidance = count(guide)
    g = guided_steps(options)
    steps = objects * options.object_steps + options.global_steps
    orag = steps * step + (objects + 1) * decode + encode * (objects > 0) + (objects + 2) * text
    table = {
        "plain": steps * step + decode + 2 * text,
        "orag": orag + objects * g * guidance,
        "orag-unguided": orag,
        "j0": options.global_steps * step + decode + 2 * text,
    }
    print(f"per call at {width}x{height} (GFLOP): CFG step (UNet + ControlNet, batch 2) {step / 1e9:.0f}, "
          f"guidance forward + backward {guidance / 1e9:.0f}, VAE encode {encode / 1e9:.0f}, decode {decode / 1e9:.0f}, "
          f"text encoder {text / 1e9:.1f}; {g} guided steps per object")
    return table


def decoder_options(name: str) -> OragOptions:
    """The ``orag`` restorer of profile ``name``, at the benchmark's size (``resolution`` 0)."""
    restorer = load_profile(name).roles[Role.restorer]
    if restorer.plugin != "orag":
        raise SystemExit(f"orag_cost: profile {name} does not restore with orag")
    return OragOptions(**{**restorer.options, "resolution": 0})


def backbone(options: OragOptions, scale: str) -> SD15:
    """Random SD2.1 + IRControlNet for a DiffBIR ControlNet, else SD1.5 + a ControlNet for ``options.control``
    (and TAESD when the stage images use it)."""
    family = "sd21" if is_checkpoint_file(options.controlnet) else "sd15"
    return random_sd15(scale, options.control, family, tiny_vae=bool(options.tiny_vae_choice))  # type: ignore[arg-type]


class CountingSampler(OragSampler):
    """The restorer's sampler, counting its model calls: ``predict`` by batch size, ``guide``,
    VAE ``encode`` / ``decode`` (``tiny_decode``: TAESD) and text-encoder ``embed``."""

    def __init__(self, parts: SD15, options: OragOptions) -> None:
        super().__init__(parts, options)
        self.calls: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1

    def predict(self, cond: Any, z: Any, t: Any) -> Any:
        self._count(f"step{cond.embeds.shape[0]}")
        return super().predict(cond, z, t)

    def guide(self, cond: Any, z: Any, t: Any) -> tuple[float, Any]:
        self._count("guide")
        return super().guide(cond, z, t)

    def encode(self, pixels: Any) -> Any:
        self._count("encode")
        return super().encode(pixels)

    def decode(self, latent: Any, vae: Any = None) -> Any:
        self._count("decode" if vae is None else "tiny_decode")
        return super().decode(latent, vae)

    def embed(self, prompt: str) -> Any:
        self._count("text")
        return super().embed(prompt)


def decoder_calls(options: OragOptions, objects: int) -> dict[str, int]:
    """Model calls of one restoration with ``objects`` objects (a real run on tiny models, 64x64)."""
    counter = CountingSampler(backbone(options, "tiny"), options)
    image, objs = scene(64, 64, objects)
    counter.run(image, CAPTION, objs)
    return counter.calls


def decoder_flops(width: int, height: int, objects: int, names: list[str]) -> dict[str, dict[str, float]]:
    """Per decoder: UNet evaluations, guided steps and FLOPs of one image (full-size per-call counts on meta)."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(fn: Any) -> int:
        with FlopCounterMode(display=False) as mode:
            fn()
        return mode.get_total_flops()

    canvas = Canvas(width, height)
    _, objs = scene(width, height, 1)
    out = {}
    for name in names:
        options = decoder_options(name)
        calls = decoder_calls(options, objects)
        with torch.device("meta"):
            parts = backbone(options, "full")
        sampler = OragSampler(parts, options)
        per_call: dict[str, int] = {}
        with torch.no_grad():
            pixels = torch.zeros(1, 3, *canvas.padded, device="meta")
            z = torch.zeros(1, 4, *canvas.latent, device="meta")
            negative = sampler.embed(options.negative_prompt)
            per_call["text"] = count(lambda: sampler.embed(CAPTION))
            per_call["encode"] = count(lambda: sampler.encode(pixels))
            per_call["decode"] = count(lambda: sampler.decode(z))
            if parts.tiny_vae is not None:
                per_call["tiny_decode"] = count(lambda: sampler.decode(z, parts.tiny_vae))
            for cfg in (1.0, 2.0):
                cond = sampler.condition(pixels, None, CAPTION, options.object_steps, negative, cfg, options.stage_schedulers[0])
                per_call[f"step{cond.embeds.shape[0]}"] = count(lambda: sampler.predict(cond, z, cond.timesteps[0]))
            cond = sampler.object_condition(pixels, None, objs[0], canvas, negative)
        t = cond.timesteps[0]

        def guide() -> None:  # sampler.guide, with backward() (autograd.grad trips the counter's hooks)
            latent = z.detach().requires_grad_(True)
            sampler.energy(cond, latent, t).backward()

        per_call["guide"] = count(guide)
        unet = sum(n * int(k[4:]) for k, n in calls.items() if k.startswith("step")) + calls.get("guide", 0)
        flops = {k: n * per_call[k] for k, n in calls.items()}
        out[name] = {"unet": unet, "guided": calls.get("guide", 0), "flops": sum(flops.values()),
                     "denoise": sum(v for k, v in flops.items() if k.startswith("step") or k == "guide"),
                     "vae": sum(v for k, v in flops.items() if k in ("encode", "decode", "tiny_decode"))}
        steps = f"{options.object_steps} x {objects} + {options.global_steps}"
        print(f"{name}: {'/'.join(options.stage_schedulers)}, steps {steps}, CFG {sampler.object_cfg:g} / {sampler.global_cfg:g}; "
              f"calls {calls}; per call (GFLOP) " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in per_call.items()), flush=True)
    return out


def worker(args: argparse.Namespace, variant: str) -> None:
    """Build the models, run ``variant`` once, print one JSON line (seconds, CPU seconds, MiB)."""
    device, dtype = torch.device(args.device), getattr(torch, args.dtype or ("float16" if args.device == "cuda" else "float32"))
    if args.threads:
        torch.set_num_threads(args.threads)
    decoder = variant in DECODERS
    parts = backbone(decoder_options(variant), "full") if decoder else random_sd15("full")
    if (device.type, dtype) != ("cpu", torch.float32):
        for model in parts.models:
            model.to(device=device, dtype=dtype)
    w, h = size(args.size)
    image, objects = scene(w, h, args.objects)
    options = OragOptions(object_steps=args.object_steps, global_steps=args.global_steps)
    counter: CountingSampler | None = None
    if decoder:
        counter = CountingSampler(parts, decoder_options(variant))

        def run() -> None:
            assert counter is not None
            counter.run(image, CAPTION, objects)
    elif variant == "plain":
        from diffusers import DDIMScheduler, StableDiffusionControlNetPipeline

        pipe = StableDiffusionControlNetPipeline(
            vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
            controlnet=parts.controlnet, scheduler=DDIMScheduler.from_config(parts.scheduler_config),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        steps = args.objects * args.object_steps + args.global_steps

        def run() -> None:
            pipe(CAPTION, image=image, num_inference_steps=steps, guidance_scale=options.cfg_scale,
                 negative_prompt=options.negative_prompt, height=h, width=w, output_type="np",
                 generator=torch.Generator().manual_seed(0))
    else:
        opts = options.model_copy(update={"guidance_threshold": 1000}) if variant == "orag-unguided" else options
        objs = [] if variant == "j0" else objects

        def run() -> None:
            OragSampler(parts, opts).run(image, CAPTION, objs)

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
    print(json.dumps({"variant": variant, "seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                      "mib": peak / 2**20, "load": os.getloadavg()[0], "calls": counter.calls if counter else {}}))


def size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height or width)


def spread(values: list[float], fmt: str = ".1f") -> str:
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}"


def timed(args: argparse.Namespace, variants: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``args.repeats`` runs of every variant, each in its own process, interleaved A B C C B A ..."""
    times: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for i in range(args.repeats):
        for variant in variants if i % 2 == 0 else variants[::-1]:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--size", args.size,
                   "--objects", str(args.objects), "--object-steps", str(args.object_steps),
                   "--global-steps", str(args.global_steps), "--device", args.device, "--threads", str(args.threads)]
            if args.dtype:
                cmd += ["--dtype", args.dtype]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"orag_cost: {variant} failed:\n{done.stderr[-2000:]}")
            times[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"run {i + 1} {variant}: {times[variant][-1]}", flush=True)
    return times


def decoders_main(args: argparse.Namespace, names: list[str]) -> None:
    """UNet evaluations, FLOPs and (with ``--repeats``) CPU time per image of each profile's decoder."""
    unknown = sorted(set(names) - set(DECODERS))
    if unknown:
        raise SystemExit(f"orag_cost: unknown decoder(s) {', '.join(unknown)}; choose from {', '.join(DECODERS)}")
    w, h = size(args.size)
    print(f"{w}x{h}, J={args.objects}, the shipped profiles' restorers at this size\n")
    cost = decoder_flops(w, h, args.objects, names)
    times = timed(args, names)
    base = cost.get("paper")
    print("\n| decoder | UNet evaluations | x paper | guided steps | GFLOP | x paper | of which UNet + ControlNet | VAE | "
          "CPU s | x paper (CPU, medians) | wall s | peak MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |")
    for name in names:
        c, runs = cost[name], times[name]
        ratio = [f"{c[k] / base[k]:.3f}" if base else "-" for k in ("unet", "flops")]
        timing = ["-"] * 4
        if runs:
            cpu_ratio = "-"
            if times.get("paper"):
                cpu_ratio = f"{statistics.median(r['cpu'] for r in runs) / statistics.median(r['cpu'] for r in times['paper']):.3f}"
            timing = [spread([r["cpu"] for r in runs]), cpu_ratio, spread([r["seconds"] for r in runs]), spread([r["mib"] for r in runs], ".0f")]
            counted = decoder_calls(decoder_options(name), args.objects)
            if any(r["calls"] != counted for r in runs):
                raise SystemExit(f"orag_cost: {name} made other model calls at full size than on tiny models")
        print(f"| {name} | {c['unet']:.0f} | {ratio[0]} | {c['guided']:.0f} | {c['flops'] / 1e9:.0f} | {ratio[1]} | "
              f"{c['denoise'] / 1e9:.0f} | {c['vae'] / 1e9:.0f} | {' | '.join(timing)} |")
    loads = [r["load"] for runs in times.values() for r in runs]
    if loads:
        print(f"\n1-minute load average at the end of each run: {min(loads):.1f} to {max(loads):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="768x512", help="WIDTHxHEIGHT or one side (default 768x512, Kodak)")
    ap.add_argument("--objects", type=int, default=1, help="J (default 1)")
    ap.add_argument("--object-steps", type=int, default=OragOptions().object_steps)
    ap.add_argument("--global-steps", type=int, default=OragOptions().global_steps)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (float16 there unless --dtype)")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--decoders", default="", help=f"profiles' decoders to compare instead of the variants ({','.join(DECODERS)})")
    ap.add_argument("--repeats", type=int, default=0, help="timed runs per variant (0: FLOP table only)")
    ap.add_argument("--no-flops", action="store_true", help="skip the FLOP table")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args, args.worker)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("orag_cost: --device cuda but torch sees no CUDA device")
    if args.decoders:
        decoders_main(args, [d for d in args.decoders.split(",") if d])
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"orag_cost: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    w, h = size(args.size)
    options = OragOptions(object_steps=args.object_steps, global_steps=args.global_steps)
    steps = args.objects * args.object_steps + args.global_steps
    print(f"{w}x{h}, J={args.objects}, {args.object_steps} object + {args.global_steps} global steps "
          f"(plain: {steps} steps; j0: {args.global_steps}), CFG {options.cfg_scale}\n")
    flops = None if args.no_flops else flop_table(w, h, args.objects, options)
    times = timed(args, variants)
    print("\n| variant | GFLOP | x plain | x j0 | wall s | CPU s | x plain (wall / CPU, medians) | peak MiB |")
    print("| --- | ---: | ---: | ---: | --- | --- | ---: | --- |")
    for v in variants:
        cells = ["-"] * 3
        if flops:
            cells = [f"{flops[v] / 1e9:.0f}", f"{flops[v] / flops['plain']:.3f}", f"{flops[v] / flops['j0']:.3f}"]
        runs = times[v]
        timing = ["-"] * 4
        if runs:
            wall = [r["seconds"] for r in runs]
            ratio = "-"
            if times.get("plain"):
                ratio = " / ".join(f"{statistics.median(r[k] for r in runs) / statistics.median(r[k] for r in times['plain']):.2f}"
                                   for k in ("seconds", "cpu"))
            timing = [spread(wall), spread([r["cpu"] for r in runs]), ratio, spread([r["mib"] for r in runs], ".0f")]
        print(f"| {v} | {' | '.join(cells)} | {' | '.join(timing)} |")
    loads = [r["load"] for runs in times.values() for r in runs]
    if loads:
        print(f"\n1-minute load average at the end of each run: {min(loads):.1f} to {max(loads):.1f}")
    if args.device == "cuda" and times.get("j0"):
        print(f"\nj0 ({args.global_steps} steps): {statistics.median(r['seconds'] for r in times['j0']):.3f} s per image; "
              f"paper, Table VI: {PAPER_TABLE_VI} s (20 steps, RTX 4090)")


if __name__ == "__main__":
    main()
