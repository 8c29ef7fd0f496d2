"""``sedic-kit train-codec``: fine-tune a CompressAI model for a lower rate (the paper's recipe).

Starts from the lowest zoo quality (or random weights with ``--no-pretrained``), trains with the
rate-distortion loss ``lmbda * 255^2 * MSE + bpp`` at a lambda ten times below that quality's
zoo lambda and lr 1e-4, through accelerate (CPU, one or many GPUs: launch with ``accelerate
launch``). Checkpoints go to ``OUT/checkpoints/step-N`` and a run resumes from the newest one.
The result is exported after ``update()`` as ``OUT/ARCH-lmbdaL.pth``, loadable with
``reference_codec.checkpoint``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from sedic_kit.errors import InputError, SedicError
from sedic_kit.progress import ImageProgress

ZOO_LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.18}
"""CompressAI's MSE training lambdas per zoo quality."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".ppm", ".tif", ".tiff"}
KEEP_CHECKPOINTS = 2


def image_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{root}: no training images found")
    return files


def crops_dataset(files: list[Path], crop: int) -> Any:
    """Random ``crop`` x ``crop`` RGB crops in [0, 1] (images smaller than the crop are upscaled); seeded by torch."""
    import numpy as np
    import torch
    from PIL import Image

    class Crops(torch.utils.data.Dataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int) -> torch.Tensor:
            with Image.open(files[i]) as im:
                image = im.convert("RGB")
            if min(image.size) < crop:
                f = crop / min(image.size)
                image = image.resize((max(crop, round(image.width * f)), max(crop, round(image.height * f))), Image.Resampling.BICUBIC)
            x0 = int(torch.randint(0, image.width - crop + 1, ()))
            y0 = int(torch.randint(0, image.height - crop + 1, ()))
            arr = np.asarray(image.crop((x0, y0, x0 + crop, y0 + crop)), dtype=np.float32) / 255.0
            return torch.from_numpy(arr).permute(2, 0, 1)

    return Crops()


def initial_model(arch: str, quality: int, metric: str, pretrained: bool, seed: int) -> Any:
    """The starting network: zoo weights from the torch hub cache, or seeded random weights."""
    import torch

    from sedic_kit.errors import ModelNotFoundError

    from .codecs import import_compressai, read_state_dict, zoo_checkpoint

    import_compressai()
    import compressai.zoo.image as zoo

    if arch not in zoo.model_architectures:
        raise SedicError(f"unknown --arch {arch} (choose from {', '.join(sorted(zoo.model_architectures))})")
    if pretrained:
        url, path = zoo_checkpoint(arch, metric, quality)
        if not path.is_file():
            raise ModelNotFoundError(
                f"train-codec: zoo weights {path.name} are not in the torch hub cache {path.parent}; "
                f"download {url} there, or pass --no-pretrained"
            )
        return zoo.model_architectures[arch].from_state_dict(read_state_dict(path))
    torch.manual_seed(seed)
    return zoo.model_architectures[arch](*zoo.cfgs[arch][quality])


def latest_checkpoint(folder: Path) -> Path | None:
    done = sorted(p for p in folder.glob("step-*") if (p / "step.json").is_file())
    return done[-1] if done else None


def train(
    arch: str,
    data: Path,
    out: Path,
    lmbda: float | None = None,
    quality: int = 1,
    metric: str = "mse",
    pretrained: bool = True,
    steps: int = 100_000,
    batch_size: int = 8,
    crop: int = 256,
    lr: float = 1e-4,
    checkpoint_every: int = 1000,
    seed: int = 0,
    cpu: bool = False,
    log: Any = print,
    on_step: Callable[[int], None] | None = None,
) -> Path:
    """Train (resuming from ``out/checkpoints`` when present) and export; return the exported file."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    lmbda = ZOO_LAMBDAS[quality] / 10 if lmbda is None else lmbda
    accelerator = Accelerator(cpu=cpu)
    set_seed(seed)
    model = initial_model(arch, quality, metric, pretrained, seed)
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main, lr=lr)
    aux_optimizer = torch.optim.Adam(aux, lr=1e-3)
    loader = torch.utils.data.DataLoader(crops_dataset(image_files(data), crop), batch_size=batch_size, shuffle=True, drop_last=False)
    model, optimizer, aux_optimizer, loader = accelerator.prepare(model, optimizer, aux_optimizer, loader)
    folder = out / "checkpoints"
    step = 0
    resume = latest_checkpoint(folder)
    if resume is not None:
        accelerator.load_state(str(resume))
        step = json.loads((resume / "step.json").read_text())["step"]
        log(f"resumed from {resume} at step {step}")
    model.train()
    while step < steps:
        for x in loader:
            if step >= steps:
                break
            optimizer.zero_grad()
            aux_optimizer.zero_grad()
            result = model(x)
            pixels = x.shape[0] * x.shape[2] * x.shape[3]
            bpp = sum(torch.log(lk).sum() for lk in result["likelihoods"].values()) / (-math.log(2) * pixels)
            mse = torch.nn.functional.mse_loss(result["x_hat"], x)
            loss = lmbda * 255**2 * mse + bpp
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(main, 1.0)
            optimizer.step()
            aux_loss = accelerator.unwrap_model(model).aux_loss()
            accelerator.backward(aux_loss)
            aux_optimizer.step()
            step += 1
            if on_step is not None:
                on_step(step)
            if step % checkpoint_every == 0 or step == steps:
                save_checkpoint(accelerator, folder, step)
                log(f"step {step}: loss {loss.item():.4f} bpp {bpp.item():.4f} mse {mse.item():.6f} aux {aux_loss.item():.2f}")
    accelerator.wait_for_everyone()
    target = out / f"{arch}-lmbda{lmbda:g}.pth"
    if accelerator.is_main_process:
        export(accelerator.unwrap_model(model), arch, lmbda, target)
    return target


def save_checkpoint(accelerator: Any, folder: Path, step: int) -> None:
    path = folder / f"step-{step:08d}"
    accelerator.save_state(str(path), safe_serialization=False)  # keeps the empty CDF buffers
    if accelerator.is_main_process:
        (path / "step.json").write_text(json.dumps({"step": step}))
        for old in sorted(p for p in folder.glob("step-*") if (p / "step.json").is_file())[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old)


def export(model: Any, arch: str, lmbda: float, target: Path) -> None:
    """Build the entropy-coder tables and save ``{"arch", "lmbda", "state_dict"}``."""
    import torch

    model = model.cpu().eval()
    model.update(force=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    torch.save({"arch": arch, "lmbda": lmbda, "state_dict": model.state_dict()}, tmp)
    tmp.replace(target)


def add_train_command(cli: Any) -> None:
    """Register ``train-codec`` on the sedic-kit typer app."""

    @cli.command("train-codec")
    def train_codec(
        arch: Annotated[str, typer.Option(help="CompressAI architecture, e.g. cheng2020-attn.")],
        data: Annotated[Path, typer.Option(help="Directory of training images (searched recursively).")],
        out: Annotated[Path, typer.Option(help="Output directory: checkpoints/ and the exported model.")] = Path("codec-out"),
        lmbda: Annotated[Optional[float], typer.Option(help="RD trade-off; default: the zoo lambda of --quality / 10.")] = None,
        quality: Annotated[int, typer.Option(help="Zoo quality to start from.")] = 1,
        metric: Annotated[str, typer.Option(help="Zoo metric of the starting weights.")] = "mse",
        pretrained: Annotated[bool, typer.Option(help="Start from zoo weights (else seeded random weights).")] = True,
        steps: Annotated[int, typer.Option(help="Total optimisation steps.")] = 100_000,
        batch_size: Annotated[int, typer.Option(help="Crops per step (per device).")] = 8,
        crop: Annotated[int, typer.Option(help="Crop side in pixels.")] = 256,
        lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-4,
        checkpoint_every: Annotated[int, typer.Option(help="Save a resumable checkpoint every N steps.")] = 1000,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        cpu: Annotated[bool, typer.Option(help="Force CPU even where a GPU exists.")] = False,
    ) -> None:
        """Fine-tune a CompressAI model for a lower rate and export it for reference_codec.checkpoint."""
        from .codecs import CODECS

        by_name = {c.name: c for c in CODECS}
        if arch not in by_name:
            raise SedicError(f"unknown --arch {arch} (choose from {', '.join(by_name)})")
        by_name[arch].check_available()
        if crop % 64:
            raise SedicError(f"--crop must be a multiple of 64 (the models downsample by 64), got {crop}")
        if quality not in ZOO_LAMBDAS or quality > by_name[arch].max_quality:
            raise SedicError(f"--quality must be 1..{by_name[arch].max_quality} for {arch}")
        with ImageProgress(Console(stderr=True), steps, "training") as bar:
            path = train(arch, data, out, lmbda, quality, metric, pretrained, steps, batch_size, crop, lr, checkpoint_every, seed, cpu, typer.echo, bar.done)
        typer.echo(f"exported {path} (use it with --set reference_codec.plugin={arch} --set reference_codec.checkpoint={path})")
