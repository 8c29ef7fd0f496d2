"""A full-size dry run of the ``offline`` profile on CPU: the real architectures with random weights.

Writes Grounding DINO base, SAM ViT-H, SD1.5 (UNet, VAE, CLIP text) and the tile ControlNet at
full size in their published layouts (random weights; processors and tokenizers built from their
classes' defaults, a small BERT/CLIP vocabulary), then runs ``sedic-kit run`` on one Kodak image with
the sidecar describer (the Kodak captions), CompressAI's cheng2020-attn with seeded random weights,
ORAG at a reduced restore resolution with 2 steps per stage. ``run`` runs in this process (its
CLI entry point); per phase (encode, then decode after ``run`` releases the encoder's models) it
prints the wall time and the peak resident memory, sampled every 0.2 s.

    nice -n 10 python benchmarks/full_size_dry_run.py [--image kodim23.png] [--resolution 128] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"
SEMANTICS = ROOT.parent / "shared" / "data" / "kodak-semantics"


def write_models(work: Path) -> dict[str, Path]:
    """The full-size random models in their published layouts under ``work``."""
    import torch
    import transformers
    from diffusers import DDIMScheduler

    from sedic_plugins.shared import full_size
    from sedic_plugins.restorers.orag.tiny import byte_tokenizer

    torch.manual_seed(0)
    out = {name: work / name for name in ("dino", "sam", "sd15", "tile")}
    if (work / ".complete").exists():
        return out
    work.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(33, 127)]
    vocab = work / "bert-vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *("##" + c for c in letters)]) + "\n")
    bert = transformers.BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    builders = full_size.builders()
    builders["IDEA-Research/grounding-dino-base"]().save_pretrained(out["dino"])
    transformers.GroundingDinoProcessor(transformers.GroundingDinoImageProcessor(), bert).save_pretrained(out["dino"])
    builders["facebook/sam-vit-huge"]().save_pretrained(out["sam"])
    transformers.SamProcessor(transformers.SamImageProcessor()).save_pretrained(out["sam"])
    for part, sub in (("sd15-unet", "unet"), ("sd15-vae", "vae"), ("sd15-text", "text_encoder")):
        builders[part]().save_pretrained(out["sd15"] / sub)
    byte_tokenizer().save_pretrained(out["sd15"] / "tokenizer")
    DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(out["sd15"] / "scheduler")
    (out["sd15"] / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    builders["sd15-controlnet"]().save_pretrained(out["tile"], safe_serialization=False)  # main's .bin
    (work / ".complete").write_text("ok\n")
    return out


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="kodim23.png")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("/tmp/sedic-full-size"))
    args = parser.parse_args()
    start = time.perf_counter()
    models = write_models(args.work)
    print(f"wrote the full-size models in {time.perf_counter() - start:.0f} s", flush=True)
    image = args.work / "input" / args.image
    image.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(KODAK / args.image, image)
    out = args.work / "out"
    shutil.rmtree(out, ignore_errors=True)
    sets = [
        "describer.plugin=sidecar", f"describer.path={SEMANTICS}",
        f"grounder.model={models['dino']}", f"segmenter.model={models['sam']}", "reference_codec.pretrained=false",
        f"restorer.model={models['sd15']}", f"restorer.controlnet={models['tile']}", f"restorer.resolution={args.resolution}",
        "restorer.object_steps=2", "restorer.global_steps=2",
    ]
    argv = ["run", str(image), "--profile", "offline", "--out", str(out), *(a for s in sets for a in ("--set", s))]
    print("$ sedic-kit " + " ".join(argv), flush=True)

    from sedic_kit import Codec
    from sedic_kit.cli import main as cli

    phase, peaks, marks = ["encode"], {"encode": 0, "decode": 0}, {"encode": time.perf_counter()}
    release = Codec.release

    def released(self: Codec, *roles: object) -> None:  # `run` releases the encoder's models between its phases
        release(self, *roles)  # type: ignore[arg-type]
        marks["decode"], phase[0] = time.perf_counter(), "decode"

    Codec.release = released  # type: ignore[method-assign]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks[phase[0]] = max(peaks[phase[0]], resident_kib())
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        code = cli(argv)
    finally:
        done.set()
        sampler.join()
    end = time.perf_counter()
    decode = marks.get("decode", end)
    print(f"exit {code}")
    print(f"encode phase: {decode - marks['encode']:.0f} s, peak RSS {peaks['encode'] / 2**20:.2f} GiB")
    print(f"decode phase: {end - decode:.0f} s, peak RSS {peaks['decode'] / 2**20:.2f} GiB")
    sys.exit(code)


if __name__ == "__main__":
    main()
