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
from rich.text import Text

from . import __version__
from .codec import Codec, finite, save_png, write_atomic
from .errors import SedicError
from .eval.commands import add_commands as add_eval_commands
from .eval.results import results_json
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
models_app = typer.Typer(help="Check and fetch the model weights a profile needs.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console(soft_wrap=True, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="Profile name or path to a .toml file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a profile option: ROLE.KEY=VALUE.")]
MaxPixelsOpt = Annotated[int, typer.Option(help="Refuse images larger than this many pixels.")]
TargetBppOpt = Annotated[
    Optional[float],
    typer.Option("--target-bpp", min=0.0, help="Fit each file to at most this many bpp: J, l_d, l_all from the profile's [rate] policy, then the reference setting."),
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
        err.print(Text.assemble(("warning:", "yellow"), f" {line}"))


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
                err.print(Text.assemble(("Error:", "red"), f" {exc}"))
            progress.advance(task)
    if records:
        print_summary(records)
        prof = codec.profile
        report = results_json(prof.name if prof else "custom", prof.description if prof else "", prof.to_dict() if prof else None, records)
        write_atomic(out_dir / "results.json", json.dumps(report, indent=2).encode())
        out.print(f"wrote {len(records)} reconstructions and {out_dir / 'results.json'}")
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
    png = save_png(decoded.image, out_dir / f"{path.stem}.png")
    return {
        "image": str(path),
        "sedic": str(sedic_path),
        "reconstruction": str(png),
        "file_bits": 8 * sedic_path.stat().st_size,
        **result.summary(),
        "psnr-rgb": finite(psnr(decoded.image, source.image)),
        "encoding_time": enc_time,
        "decoding_time": dec_time,
        "decode_timings": decoded.timings,
    }


def print_summary(records: list[dict[str, Any]]) -> None:
    """One line per image: bpp split by section, PSNR and times."""
    for r in records:
        parts = ", ".join(f"{k} {v / (r['width'] * r['height']):.4f}" for k, v in r["bits"].items())
        quality = "identical" if r["psnr-rgb"] is None else f"PSNR {r['psnr-rgb']:.2f} dB"
        out.print(
            f"{Path(r['image']).name}: {r['bpp']:.5f} bpp ({parts}), {quality}, "
            f"encode {r['encoding_time']:.2f} s, decode {r['decoding_time']:.2f} s"
        )


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
    out.print(f"{path}: {result.total_bits} bits, {result.bpp:.5f} bpp ({parts})")
    for note in result.notes:
        out.print(f"  {note}")


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
    out.print(f"{path}: {image.size[0]}x{image.size[1]}")


@app.command("plugins")
def list_plugins(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List installed plugins by role, with distribution, version and origin."""
    registry = get_registry()
    rows: list[dict[str, Any]] = []
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
        table.add_row(*(str(r[k] or "-") for k in ("role", "name", "distribution", "version", "origin")), status)
    out.print(table)
    for b in broken:
        out.print(Text.assemble(("broken:", "red"), f" {b['module']} ({b['distribution']}): {b['error']}"))


@profiles_app.command("list")
def profiles_list() -> None:
    """List available profiles."""
    for name, path in available_profiles().items():
        try:
            desc = load_profile(path).description
        except SedicError as exc:
            desc = f"(invalid: {exc})"
        out.print(Text.assemble((name, "bold"), f"  {desc}  ", (str(path), "dim")))


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
    out.print(f"profile {prof.name}: ok")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


@models_app.command("check")
def models_check(
    name: Annotated[str, typer.Argument(help="Profile name or path.")],
    set_: SetOpt = None,
    files: Annotated[bool, typer.Option("--files", help="List every file of the models present.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List each model a profile needs: present or missing, files, sizes, cache location (exit 1 if any is missing)."""
    from .model_files import check, profile_models

    rows: list[dict[str, Any]] = []
    for rm in profile_models(load_profile(name, set_ or [])):
        if rm.problem:
            rows.append({"role": rm.role, "plugin": rm.plugin, "status": "unavailable", "problem": rm.problem})
        for spec in rm.specs:
            st = check(spec)
            rows.append(
                {
                    "role": rm.role,
                    "plugin": rm.plugin,
                    "option": spec.what,
                    "model": spec.spec,
                    "status": "present" if st.present else "missing",
                    "location": st.location,
                    "size": st.size,
                    "files": [{"name": f, "size": n} for f, n in st.files],
                    "problem": st.problem,
                }
            )
    if as_json:
        out.print_json(json.dumps({"profile": name, "models": rows}))
    else:
        for r in rows:
            if r["status"] == "unavailable":
                out.print(Text.assemble(("unavailable", "yellow"), f" {r['role']} '{r['plugin']}': {r['problem']}"))
                continue
            color = "green" if r["status"] == "present" else "red"
            head = f"[{color}]{r['status']}[/{color}] {r['option']} = {r['model']} ({r['role']} '{r['plugin']}')"
            if r["status"] == "present":
                out.print(f"{head}: {_size(r['size'])} in {len(r['files'])} files at {r['location']}")
                for f in r["files"] if files else []:
                    out.print(f"    {f['name']}  {_size(f['size'])}")
            else:
                wanted = ", ".join(f["name"] for f in r["files"]) or "all files"
                out.print(f"{head}: needs {wanted}; would be cached in {r['location']}")
        if not rows:
            out.print(f"profile {name} needs no model weights")
    if any(r["status"] == "missing" for r in rows):
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull(name: Annotated[str, typer.Argument(help="Profile name or path.")], set_: SetOpt = None) -> None:
    """Download every model a profile needs into its cache (needs a network)."""
    from .model_files import profile_models, pull

    for rm in profile_models(load_profile(name, set_ or [])):
        if rm.problem:
            err.print(Text.assemble(("skipped", "yellow"), f" {rm.role} '{rm.plugin}': {rm.problem}"))
        for spec in rm.specs:
            out.print(f"{spec.what} = {spec.spec}: {pull(spec)}")


add_eval_commands(app)


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
        show() if show else err.print(f"Error: {exc.format_message()}")
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        return 130
    except SedicError as exc:
        if debug:
            raise
        err.print(Text.assemble(("Error:", "red"), f" {exc}"))
        return 1
    except Exception as exc:
        if debug:
            raise
        err.print(Text.assemble(("Error:", "red"), f" {type(exc).__name__}: {exc} (rerun with --debug for a traceback)"))
        return 1
    return rc if isinstance(rc, int) else 0
