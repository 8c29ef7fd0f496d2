"""The ``eval`` and ``compare`` CLI commands (heavy imports happen when a command runs)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import SedicError
from ..install import install_hint
from .patch_fid import PATCH, RealismProtocol

DataOpt = Annotated[
    str,
    typer.Option(
        "--data", "-d", metavar="SET|DIR",
        help="A pulled set (kodak, div2k, clic2020: `sedic-kit data pull kodak`), its directory, or a directory of images.",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory (reruns resume in it).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a profile option: ROLE.KEY=VALUE (every profile) or PROFILE:ROLE.KEY=VALUE.")]
ProtocolOpt = Annotated[
    Optional[str],
    typer.Option(help="as-is (Kodak) or crop768 (DIV2K/CLIC: min side 768, center crop); default from the set's manifest, else as-is."),
]
MetricsOpt = Annotated[
    Optional[str],
    typer.Option(help="Comma-separated metrics (default: all but fid-whole and kid-whole; PSNR and MS-SSIM always)."),
]
FidPatchOpt = Annotated[int, typer.Option("--fid-patch", min=0, help="Side of the FID/KID patches (0: whole images, each resized to 299x299).")]
FidShiftOpt = Annotated[Optional[int], typer.Option("--fid-shift", min=0, help="Offset of the second, shifted patch grid (default: half a patch; 0: none).")]
KidSeedOpt = Annotated[int, typer.Option("--kid-seed", help="Seed of KID's subset draws.")]
ClipOpt = Annotated[str, typer.Option(help="CLIP model for ClipSIM: hub id, local path or tiny/clip.")]
DatasetOpt = Annotated[
    Optional[str], typer.Option(help="Paper dataset for quoted numbers: kodak, div2k, clic2020, none (default: the pulled set's).")
]
CropOpt = Annotated[int, typer.Option(help="Side of the square crops in the HTML report.")]
TargetsOpt = Annotated[
    Optional[str],
    typer.Option("--target-bpp", help="Comma-separated target rates, e.g. 0.02,0.03,0.045: code every image at each (rate sweep)."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace records that --out holds from another setup (default: refuse, naming what changed).")]
AnchorOpt = Annotated[Optional[str], typer.Option(help="Profile the BD-rate/BD-metric table compares against (default: the first).")]


def parse_targets(text: str | None) -> list[float] | None:
    """``"0.02,0.03"`` -> ``[0.02, 0.03]`` (sorted, distinct, positive)."""
    if text is None:
        return None
    try:
        values = sorted({float(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise SedicError(f"--target-bpp: expected comma-separated numbers like 0.02,0.03,0.045, got {text!r}") from None
    if not values or values[0] <= 0:
        raise SedicError(f"--target-bpp: expected positive rates, got {text!r}")
    return values


def realism_protocol(patch: int, shift: int | None, seed: int) -> RealismProtocol:
    """The FID/KID protocol of ``--fid-patch``, ``--fid-shift`` and ``--kid-seed``."""
    if 0 < patch < 32:
        raise SedicError(f"--fid-patch: expected 0 (whole images) or at least 32 px, got {patch}")
    if patch and shift is not None and shift >= patch:
        raise SedicError(f"--fid-shift: expected less than the patch ({patch} px), got {shift}")
    if patch == 0:
        return RealismProtocol(patch=None, kid_subset_size=PATCH.kid_subset_size, seed=seed)
    return RealismProtocol(patch=patch, shift=shift, seed=seed)


def print_summary(console: Console, compare_json: Path) -> None:
    """The mean table (one row per profile and rate) and the BD table, from ``compare.json``."""
    from rich.table import Table

    from .metrics import LABELS

    combined = json.loads(compare_json.read_text())
    curves = combined["results"]
    keys = [k for k in LABELS if any(any(v is not None for v in c["results"].get(k, [])) for c in curves)]
    table = Table(title="Mean over images", title_justify="left")
    for column in ("profile", "target bpp", "bpp", *(LABELS[k] for k in keys)):
        table.add_column(column, justify="left" if column == "profile" else "right")
    notes: dict[str, None] = {}
    for c in curves:
        res = c["results"]
        for i, target in enumerate(c["targets"]):
            info = c.get("realism", [{}] * len(c["targets"]))[i]
            cells = []
            for k in keys:
                flagged = info.get(k, {}).get("flags", [])
                notes.update(dict.fromkeys(f"{LABELS[k]}: {f}" for f in flagged))
                cells.append(_fmt(res[k][i]) + (" *" if flagged and res[k][i] is not None else ""))
            table.add_row(c["name"], "-" if target is None else f"{target:g}", f"{res['bpp'][i]:.5f}", *cells)
    console.print(table)
    realism = combined["setup"].get("realism")
    if realism:
        state = "" if realism["metrics"] else "; not computed here"
        console.print(f"FID/KID protocol: {realism['name']} ({realism['samples']} samples{state}): {realism['description']}", highlight=False)
        notes.update(dict.fromkeys(f"FID/KID: {f}" for f in realism["flags"]))
    for note in notes:
        console.print(f"* {note}", highlight=False)
    if combined["bd"]:
        bd = Table(title=f"Bjontegaard deltas vs {combined['setup']['anchor']} (PCHIP)", title_justify="left")
        for column in ("profile", "metric", "BD-rate %", "BD-metric", "note"):
            bd.add_column(column, justify="left" if column in ("profile", "metric", "note") else "right")
        for row in combined["bd"]:
            rate = "n/a" if row["bd_rate"] is None else f"{row['bd_rate']:+.2f}"
            metric = "n/a" if row["bd_metric"] is None else f"{row['bd_metric']:+.4f}"
            bd.add_row(row["profile"], LABELS[row["metric"]], rate, metric, row["note"] or "")
        console.print(bd)
    err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
    for c in curves:
        for target, lines in zip(c["targets"], c.get("warnings", [])):
            point = c["name"] if target is None else f"{c['name']} @ {target:g} bpp"
            for line in lines:
                err.print(f"warning: {point}: {line}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def run_compare(
    profiles: list[str], data: str, out: Path, set_: list[str] | None, protocol: str | None,
    metrics: str | None, clip_model: str, dataset: str | None, crop: int,
    targets: str | None = None, anchor: str | None = None, force: bool = False,
    realism: RealismProtocol | None = None,
) -> None:
    """Shared body of ``eval`` and ``compare``."""
    missing = [m for m in ("torch", "torchmetrics", "pytorch_msssim", "accelerate", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise SedicError(f"evaluation needs {', '.join(missing)}: {install_hint('eval')}")
    from .compare import compare
    from .datasets import PAPER_SET_SIZES, PROTOCOLS
    from .manifest import resolve
    from .runner import EvalConfig, shutdown_distributed

    if protocol is not None and protocol not in PROTOCOLS:
        raise SedicError(f"--protocol: expected as-is or crop768, got {protocol!r}")
    if dataset not in (None, "none", *PAPER_SET_SIZES):
        raise SedicError(f"--dataset: expected {', '.join(PAPER_SET_SIZES)} or none, got {dataset!r}")
    chosen = resolve(data, protocol)  # type: ignore[arg-type]
    if chosen.note:
        Console(stderr=True, soft_wrap=True).print(chosen.note, highlight=False, markup=False)
    cfg = EvalConfig(
        profile=profiles[0], data=chosen.images, out=out, overrides=list(set_ or []),
        protocol=chosen.protocol,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None, clip_model=clip_model,
        force=force, realism=realism or PATCH,
    )
    rates = parse_targets(targets)
    if rates and len(rates) > 1 and len(profiles) > 1 and importlib.util.find_spec("bjontegaard") is None:
        raise SedicError(f"the BD-rate table needs bjontegaard: {install_hint('eval')}")
    if anchor is not None and anchor not in profiles:
        raise SedicError(f"--anchor: {anchor!r} is not one of --profiles ({', '.join(profiles)})")
    paper_set = chosen.paper_set if dataset is None else (None if dataset == "none" else dataset)
    command = shlex.join(["sedic-kit", *sys.argv[1:]])
    written = compare(profiles, cfg, paper_set, crop, rates, anchor, command)
    shutdown_distributed()
    if written:
        console = Console(soft_wrap=True)
        print_summary(console, written["json"])
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
        target_bpp: TargetsOpt = None,
        force: ForceOpt = False,
        fid_patch: FidPatchOpt = 256,
        fid_shift: FidShiftOpt = None,
        kid_seed: KidSeedOpt = 0,
    ) -> None:
        """Evaluate one profile: bpp per section, PSNR, MS-SSIM and the learned metrics available here."""
        realism = realism_protocol(fid_patch, fid_shift, kid_seed)
        run_compare([profile], data, out, set_, protocol, metrics, clip_model, dataset, crop, target_bpp, force=force, realism=realism)

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
        target_bpp: TargetsOpt = None,
        anchor: AnchorOpt = None,
        force: ForceOpt = False,
        fid_patch: FidPatchOpt = 256,
        fid_shift: FidShiftOpt = None,
        kid_seed: KidSeedOpt = 0,
    ) -> None:
        """Evaluate several profiles on one set (optionally swept over rates): JSON, CSV, RD curves, BD table, HTML report."""
        names = [p.strip() for p in profiles.split(",") if p.strip()]
        if not names:
            raise SedicError("--profiles: give at least one profile")
        realism = realism_protocol(fid_patch, fid_shift, kid_seed)
        run_compare(names, data, out, set_, protocol, metrics, clip_model, dataset, crop, target_bpp, anchor, force, realism)
