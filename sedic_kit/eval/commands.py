"""The ``eval`` and ``compare`` CLI commands (heavy imports happen when a command runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import SedicError
from ..install import install_hint

DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Directory of images (e.g. ../shared/data/kodak).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory (reruns resume in it).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a profile option: ROLE.KEY=VALUE (every profile) or PROFILE:ROLE.KEY=VALUE.")]
ProtocolOpt = Annotated[
    Optional[str],
    typer.Option(help="as-is (Kodak) or crop768 (DIV2K/CLIC: min side 768, center crop); default from the directory name."),
]
MetricsOpt = Annotated[Optional[str], typer.Option(help="Comma-separated metrics (default: all; PSNR and MS-SSIM always).")]
ClipOpt = Annotated[str, typer.Option(help="CLIP model for ClipSIM: hub id, local path or tiny/clip.")]
DatasetOpt = Annotated[Optional[str], typer.Option(help="Paper dataset for quoted numbers: kodak, div2k, clic2020, none.")]
CropOpt = Annotated[int, typer.Option(help="Side of the square crops in the HTML report.")]


def run_compare(
    profiles: list[str], data: Path, out: Path, set_: list[str] | None, protocol: str | None,
    metrics: str | None, clip_model: str, dataset: str | None, crop: int,
) -> None:
    """Shared body of ``eval`` and ``compare``."""
    missing = [m for m in ("torch", "torchmetrics", "pytorch_msssim", "accelerate", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise SedicError(f"evaluation needs {', '.join(missing)}: {install_hint('eval')}")
    from .compare import compare
    from .datasets import infer
    from .runner import EvalConfig, shutdown_distributed

    guessed, default_protocol = infer(data)
    if protocol not in (None, "as-is", "crop768"):
        raise SedicError(f"--protocol: expected as-is or crop768, got {protocol!r}")
    if dataset not in (None, "none", "kodak", "div2k", "clic2020"):
        raise SedicError(f"--dataset: expected kodak, div2k, clic2020 or none, got {dataset!r}")
    cfg = EvalConfig(
        profile=profiles[0], data=data, out=out, overrides=list(set_ or []),
        protocol=protocol or default_protocol,  # type: ignore[arg-type]
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None, clip_model=clip_model,
    )
    paper_set = guessed if dataset is None else (None if dataset == "none" else dataset)
    written = compare(profiles, cfg, paper_set, crop)
    shutdown_distributed()
    if written:
        console = Console(soft_wrap=True)
        for what, path in written.items():
            console.print(f"{what}: {path}", highlight=False)


def add_commands(app: typer.Typer) -> None:
    """Register ``eval`` and ``compare`` on the main CLI."""
    from .metrics import DEFAULT_CLIP_MODEL

    @app.command("eval")
    def eval_cmd(
        profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name or path to a .toml file.")],
        data: DataOpt,
        out: OutOpt = Path("eval-out"),
        set_: SetOpt = None,
        protocol: ProtocolOpt = None,
        metrics: MetricsOpt = None,
        clip_model: ClipOpt = DEFAULT_CLIP_MODEL,
        dataset: DatasetOpt = None,
        crop: CropOpt = 256,
    ) -> None:
        """Evaluate one profile: bpp per section, PSNR, MS-SSIM and the learned metrics available here."""
        run_compare([profile], data, out, set_, protocol, metrics, clip_model, dataset, crop)

    @app.command("compare")
    def compare_cmd(
        profiles: Annotated[str, typer.Option("--profiles", help="Comma-separated profile names or paths.")],
        data: DataOpt,
        out: OutOpt = Path("compare-out"),
        set_: SetOpt = None,
        protocol: ProtocolOpt = None,
        metrics: MetricsOpt = None,
        clip_model: ClipOpt = DEFAULT_CLIP_MODEL,
        dataset: DatasetOpt = None,
        crop: CropOpt = 256,
    ) -> None:
        """Evaluate several profiles on one set: JSON, CSV, RD plots and an HTML report."""
        names = [p.strip() for p in profiles.split(",") if p.strip()]
        if not names:
            raise SedicError("--profiles: give at least one profile")
        run_compare(names, data, out, set_, protocol, metrics, clip_model, dataset, crop)
