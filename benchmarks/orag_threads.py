"""How much ORAG's output depends on the torch thread count (the CPU side of the determinism contract).

Restores kodim23 (one object, 4 object + 4 global steps, CFG 3) with the tiny models of each
backbone, once per thread count, each in its own process, and compares the 8-bit images.

    python benchmarks/orag_threads.py [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

IMAGE = Path(__file__).resolve().parents[1] / "examples" / "images" / "kodim23.png"
BACKBONES = {"sd21-irc": ("tiny/sd21", "tiny/diffbir-v2", "latent"), "sd15-tile": ("tiny/sd15", "tiny/sd15-tile", "image")}


def restore(threads: int, backbone: str, out: Path) -> None:
    import torch
    from PIL import Image
    from sedic_plugins.restorers.orag.components import load_sd15
    from sedic_plugins.restorers.orag.options import OragOptions
    from sedic_plugins.restorers.orag.sampler import OragSampler

    from sedic_kit.payload import SemanticObject

    torch.set_num_threads(threads)
    model, controlnet, control = BACKBONES[backbone]
    parts = load_sd15(model, controlnet, "cpu", "float32")
    image = Image.open(IMAGE).convert("RGB")
    mask = np.zeros((image.height, image.width), dtype=bool)
    mask[100:300, 200:500] = True
    sampler = OragSampler(parts, OragOptions(control=control, object_steps=4, global_steps=4, cfg_scale=3.0))
    np.save(out, np.asarray(sampler.run(image, "a parrot", [SemanticObject("parrot", "a green parrot", mask=mask)]).image))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--worker", nargs=3, metavar=("THREADS", "BACKBONE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        restore(int(args.worker[0]), args.worker[1], Path(args.worker[2]))
        return
    counts = [int(n) for n in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in BACKBONES:
            images = []
            for n in counts:
                out = Path(tmp, f"{backbone}-{n}.npy")
                env = {**os.environ, "OMP_NUM_THREADS": str(n)}
                subprocess.run([sys.executable, __file__, "--worker", str(n), backbone, str(out)], check=True, env=env,
                               stderr=subprocess.DEVNULL)
                images.append(np.load(out).astype(int))
            for n, other in zip(counts[1:], images[1:]):
                diff = np.abs(images[0] - other)
                print(f"{backbone}: {counts[0]} vs {n} threads: max difference {diff.max()} levels, "
                      f"{100 * (diff.max(axis=-1) > 0).mean():.4f}% of pixels differ")


if __name__ == "__main__":
    main()
