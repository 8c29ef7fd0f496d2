"""The ``sedic-kit`` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from . import __version__
from .codec import Codec, finite, write_atomic
from .errors import SedicError
from .imaging import DEFAULT_MAX_PIXELS, psnr
from .plugins import get_registry
from .profiles import available_profiles, load_profile
from .roles import Role

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".avif", ".heic"}

app = typer.Typer(
    name="sedic-kit",
    help="Semantic image compression at extremely low bitrates (SEDIC), with pluggable backends.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
profiles_app = typer.Typer(help="List, show and check profiles.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="Profile name or path to a .toml file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a profile option: ROLE.KEY=VALUE.")]
MaxPixelsOpt = Annotated[int, typer.Option(help="Refuse images larger than this many pixels.")]
TargetBppOpt = Annotated[
    Optional[float],
    typer.Option("--target-bpp", min=0.0, help="Choose the reference codec's setting so each file is at most this many bpp."),
]


@app.callback(invoke_without_command=True)
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"sedic-kit {__version__}")
        raise typer.Exit()
    for line in get_registry().errors():
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)


def expand_inputs(items: list[Path]) -> list[Path]:
    """Files as given, directories expanded to the images they contain (sorted)."""
    paths: list[Path] = []
    for item in items:
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            paths.append(item)
    if not paths:
        raise SedicError("no input images found")
    return paths


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="Images or directories of images.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("out"),
    profile: ProfileOpt = "lite",
    set_: SetOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    target_bpp: TargetBppOpt = None,
) -> None:
    """Encode, write .sedic, decode, write the reconstruction and a JSON report."""
    codec = Codec.from_profile(profile, overrides=set_ or [], max_pixels=max_pixels)
    paths = expand_inputs(inputs)
    records: list[dict[str, Any]] = []
    failures = 0
    with Progress(console=err, transient=True, disable=len(paths) < 2) as progress:
        task = progress.add_task("coding", total=len(paths))
        for path in paths:
            progress.update(task, description=path.name)
            try:
                records.append(run_one(codec, path, out_dir, target_bpp))
            except SedicError as exc:
                failures += 1
                err.print(f"[red]Error:[/red] {exc}", highlight=False)
            progress.advance(task)
    if records:
        print_table(records)
        report = results_json(codec, records)
        write_atomic(out_dir / "results.json", json.dumps(report, indent=2).encode())
        out.print(f"wrote {len(records)} reconstructions and {out_dir / 'results.json'}", highlight=False)
    if failures:
        raise typer.Exit(1)


def run_one(codec: Codec, path: Path, out_dir: Path, target_bpp: float | None = None) -> dict[str, Any]:
    source = codec.load(path)
    start = time.perf_counter()
    result = codec.encode(source, target_bpp)
    enc_time = time.perf_counter() - start
    sedic_path = result.save(out_dir / f"{path.stem}.sedic")
    start = time.perf_counter()
    decoded = codec.decode_detailed(sedic_path)
    dec_time = time.perf_counter() - start
    png = out_dir / f"{path.stem}.png"
    tmp = png.with_name(f".{png.name}.tmp")
    decoded.image.save(tmp, "PNG")
    tmp.replace(png)
    return {
        "image": str(path),
        "sedic": str(sedic_path),
        "reconstruction": str(png),
        "file_bits": 8 * sedic_path.stat().st_size,
        **result.summary(),
        "psnr": finite(psnr(decoded.image, source.image)),
        "encoding_time": enc_time,
        "decoding_time": dec_time,
        "decode_timings": decoded.timings,
    }


def results_json(codec: Codec, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-image records and means, shaped like ``compressai.utils.eval_model`` output."""

    def mean(key: str) -> float | None:
        vals = [r[key] for r in records if r.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    sections = sorted({k for r in records for k in r["bpp_sections"]})
    prof = codec.profile
    return {
        "name": prof.name if prof else "custom",
        "description": prof.description if prof else "",
        "profile": prof.to_dict() if prof else None,
        "sedic_kit_version": __version__,
        "results": {
            "bpp": [mean("bpp")],
            "psnr-rgb": [mean("psnr")],
            "encoding_time": [mean("encoding_time")],
            "decoding_time": [mean("decoding_time")],
            **{f"bpp-{s}": [sum(r["bpp_sections"].get(s, 0.0) for r in records) / len(records)] for s in sections},
        },
        "images": records,
    }


def print_table(records: list[dict[str, Any]]) -> None:
    sections = sorted({k for r in records for k in r["bits"]})
    table = Table(title="sedic-kit run")
    for col in ["image", "bpp", *[f"{s} bits" for s in sections], "PSNR", "enc s", "dec s"]:
        table.add_column(col, justify="left" if col == "image" else "right")
    for r in records:
        p = "inf" if r["psnr"] is None else f"{r['psnr']:.2f}"
        table.add_row(
            Path(r["image"]).name,
            f"{r['bpp']:.5f}",
            *[str(r["bits"].get(s, 0)) for s in sections],
            p,
            f"{r['encoding_time']:.2f}",
            f"{r['decoding_time']:.2f}",
        )
    out.print(table)


@app.command()
def encode(
    image: Annotated[Path, typer.Argument(help="Input image.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output .sedic (default: IMAGE.sedic).")] = None,
    profile: ProfileOpt = "lite",
    set_: SetOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    target_bpp: TargetBppOpt = None,
) -> None:
    """Encode one image into a .sedic file."""
    codec = Codec.from_profile(profile, overrides=set_ or [], max_pixels=max_pixels)
    result = codec.encode(image, target_bpp)
    path = result.save(output or image.with_suffix(".sedic"))
    parts = ", ".join(f"{k} {v}" for k, v in result.bits.items())
    out.print(f"{path}: {result.total_bits} bits, {result.bpp:.5f} bpp ({parts})", highlight=False)
    for note in result.notes:
        out.print(f"  {note}", highlight=False)


@app.command()
def decode(
    sedic: Annotated[Path, typer.Argument(help="Input .sedic file.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output image (default: FILE.png).")] = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile giving local options (model paths, device).")] = "lite",
    set_: SetOpt = None,
) -> None:
    """Decode a .sedic file to an image."""
    codec = Codec.from_profile(profile, overrides=set_ or [])
    image = codec.decode(sedic)
    path = output or sedic.with_suffix(".png")
    image.save(path)
    out.print(f"{path}: {image.size[0]}x{image.size[1]}", highlight=False)


@app.command("plugins")
def list_plugins(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List installed plugins by role, with distribution, version and origin."""
    registry = get_registry()
    rows = []
    for role in Role:
        for name in registry.names(role):
            cls = registry.classes[role][name]
            src = registry.sources[registry.owner[(role, name)]]
            missing = cls.missing_requirements()
            rows.append(
                {
                    "role": role.value,
                    "name": name,
                    "module": src.name,
                    "distribution": src.distribution,
                    "version": src.version,
                    "origin": src.origin,
                    "available": not missing,
                    "missing": missing,
                    "extra": cls.extra,
                }
            )
    broken = [{"module": s.name, "distribution": s.distribution, "error": s.error} for s in registry.sources.values() if s.error]
    if as_json:
        out.print_json(json.dumps({"plugins": rows, "errors": broken}))
        return
    table = Table(title="sedic-kit plugins")
    for col in ("role", "name", "distribution", "version", "origin", "status"):
        table.add_column(col)
    for r in rows:
        status = "ok" if r["available"] else f"needs {', '.join(r['missing'])}" + (f" ([{r['extra']}])" if r["extra"] else "")
        table.add_row(r["role"], r["name"], r["distribution"] or "-", r["version"] or "-", r["origin"], status)
    out.print(table)
    for b in broken:
        out.print(f"[red]broken:[/red] {b['module']} ({b['distribution']}): {b['error']}", highlight=False)


@profiles_app.command("list")
def profiles_list() -> None:
    """List available profiles."""
    for name, path in available_profiles().items():
        try:
            desc = load_profile(path).description
        except SedicError as exc:
            desc = f"(invalid: {exc})"
        out.print(f"[bold]{name}[/bold]  {desc}  [dim]{path}[/dim]", highlight=False)


@profiles_app.command("show")
def profiles_show(name: Annotated[str, typer.Argument(help="Profile name or path.")], set_: SetOpt = None) -> None:
    """Print a profile with everything it inherits resolved."""
    prof = load_profile(name, set_ or [])
    out.print_json(json.dumps({"name": prof.name, "path": str(prof.path), **prof.to_dict()}))


@profiles_app.command("check")
def profiles_check(name: Annotated[str, typer.Argument(help="Profile name or path.")], set_: SetOpt = None) -> None:
    """Check that every plugin of a profile is installed and its options are valid."""
    prof = load_profile(name, set_ or [])
    prof.build()
    out.print(f"profile {prof.name}: ok", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, exit 1 (2 for usage); tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("SEDIC_DEBUG"))
    get_registry().register_commands(app)
    try:
        rc = app(args=args, prog_name="sedic-kit", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: exit 2
        show = getattr(exc, "show", None)
        show() if show else err.print(f"Error: {exc.format_message()}", highlight=False)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        return 130
    except SedicError as exc:
        if debug:
            raise
        err.print(f"[red]Error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 1
    except Exception as exc:
        if debug:
            raise
        err.print(f"[red]Error:[/red] {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", highlight=False, soft_wrap=True)
        return 1
    return rc if isinstance(rc, int) else 0
