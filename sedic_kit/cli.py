"""The ``sedic-kit`` command line."""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperArgument, TyperOption

from . import progress
from .version import __version__
from .batch import Encoded, OutputConflict, Planned, RunDirectory, decode_image, encode_image
from .codec import DEFAULT_DECODE_PIXELS, Codec
from .files import save_image
from .errors import InputError, ModelNotFoundError, ProfileError, SedicError
from .eval.commands import add_commands as add_eval_commands
from .eval.data_commands import add_data_commands
from .fingerprint import setup_of
from .imaging import DEFAULT_MAX_PIXELS
from .outputs import check_output
from .plugins import get_registry
from .profiles import Problems, available_profiles, load_profile
from .progress import ImageProgress, WarningTally, plural
from .roles import ENCODER_ROLES, Role, one_line

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

out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
DEBUG = False
"""Set by ``--debug``: tracebacks of every error, caught ones included."""
COMMAND = "sedic-kit"
"""The command line being run, as a shell would take it (to print how to resume)."""

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", metavar="NAME", help="Profile name or path to a .toml file.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", metavar="ROLE.KEY=VALUE", help="Override a profile option (repeatable).")
]
MaxPixelsOpt = Annotated[int, typer.Option(metavar="N", help="Refuse images larger than this many pixels.")]
TargetBppOpt = Annotated[
    Optional[float],
    typer.Option("--target-bpp", min=0.0, metavar="BPP", help="Fit each file to at most this many bpp: J, l_d, l_all from the profile's [rate] policy, then the reference setting."),
]
GLOBAL_FLAGS = ("--debug", "--quiet")
"""Accepted anywhere on the command line (before a ``--``)."""
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace existing files (never an input).")]
SETUP_ERRORS = (ModelNotFoundError, ProfileError, ImportError, OutputConflict)
"""Failures that would repeat on every image: they stop a batch at once."""
T = TypeVar("T")


@app.callback(invoke_without_command=True)
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors (anywhere on the command line).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display and no per-image lines (anywhere).")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """--debug and --quiet are taken out of the arguments by :func:`main` (so they work anywhere);
    they are declared here for the help text."""
    if version:
        out.print(f"sedic-kit {__version__}")
        raise typer.Exit()
    for line in get_registry().errors():
        err.print(Text.assemble(("warning:", "yellow"), f" {line}"))


def expand_inputs(items: list[Path]) -> list[Path]:
    """Files as given, directories expanded to the images they contain (sorted); a missing
    input or an empty directory is one error before the first image."""
    paths: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise InputError(f"{item}: no images in this directory (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            paths += found
        elif item.exists():
            paths.append(item)
        else:
            raise InputError(f"{item}: no such file or directory")
    if not paths:
        raise SedicError("no input images found")
    return paths


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(metavar="IMAGES...", help="Images or directories of images.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Output directory (one setup per directory; a rerun resumes in it).")] = Path("out"),
    profile: ProfileOpt = "lite",
    set_: SetOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    target_bpp: TargetBppOpt = None,
    redo: Annotated[bool, typer.Option("--redo", help="Recode every image, also those an earlier run finished with this setup.")] = False,
    force: ForceOpt = False,
) -> None:
    """Encode every image (writing each .sedic at once), release the encoder's models, then decode
    each image and write its reconstruction; a JSON report lists what is in place. A rerun resumes."""
    codec = Codec.from_profile(profile, overrides=set_ or [], max_pixels=max_pixels, max_decode_pixels=max_pixels)
    check_models(codec, profile, set_ or [])
    paths = expand_inputs(inputs)
    directory = RunDirectory(out_dir, codec.profile, setup_of(codec, target_bpp=target_bpp))
    plan = directory.plan(paths, redo, force)
    todo = [p for p in plan if p.state == "todo"]
    left = [p for p in plan if p.state == "encoded"]
    earlier = len(plan) - len(todo) - len(left)
    if (earlier or left) and not progress.QUIET:
        err.print(
            f"{earlier} of {plural(len(plan), 'image')} done earlier with this setup, {left and f'{len(left)} encoded awaiting decode, ' or ''}"
            f"{len(todo)} to encode (--redo recodes them all)"
        )
    try:
        done = run_phases(codec, directory, todo, left, target_bpp)
    except KeyboardInterrupt:
        finished, encoded = directory.progress(paths)
        waiting = f", {encoded} encoded awaiting decode" if encoded else ""
        err.print(f"interrupted: {finished} of {plural(len(paths), 'image')} done{waiting}, as {directory.report_path} lists; `{COMMAND}` resumes")
        raise typer.Exit(130) from None
    failures = len(todo) + len(left) - done
    again = f" ({earlier} done earlier)" if earlier else ""
    out.print(f"wrote {plural(done, 'reconstruction')}{again} and {directory.report_path}" + (f"; {failures} failed" if failures else ""))
    if failures:
        raise typer.Exit(1)


def run_phases(codec: Codec, directory: RunDirectory, todo: list[Planned], left: list[Planned], target_bpp: float | None) -> int:
    """Encode ``todo`` (each ``.sedic`` written at once), release the encoder's models, decode those
    and ``left`` (encoded by an earlier run); return how many were decoded."""
    encoded: list[Encoded] = []
    with ImageProgress(err, len(todo), "encoding") as bar:
        for p in todo:
            with bar.item(f"encoding {p.image.name}"):
                item = per_image(directory, p.image, lambda: directory.encoded(encode_image(codec, p.image, p.sha256, target_bpp)))
            if item is not None:
                encoded.append(item)
    if todo:
        try:  # the describer's, grounder's and segmenter's models make room for the decoder's
            codec.release(*ENCODER_ROLES)
        except Exception as exc:  # the encodings are done: decode them anyway, beside what is left
            err.print(Text.assemble(("warning:", "yellow"), f" could not release the encoder's models ({one_line(exc)}); decoding beside them"))
    for p in left:
        item = per_image(directory, p.image, lambda: directory.read_back(p))
        if item is not None:
            encoded.append(item)
    warnings = WarningTally()
    done = 0
    with ImageProgress(err, len(encoded), "decoding") as bar:
        for item in encoded:
            with bar.item(f"decoding {item.image.name}"):
                record = per_image(directory, item.image, lambda: decode_image(codec, item, directory))
            if record is None:
                continue
            done += 1
            warnings.add(item.image.name, record["warnings"])
            if not progress.QUIET:
                bar.print(out, summary_line(record))
    warnings.print(err, len(encoded))
    return done


def per_image(directory: RunDirectory, path: Path, work: Callable[[], T]) -> T | None:
    """``work()`` on one image of a batch. Any failure of that image is recorded in the report and
    printed, and gives None: the batch goes on. Setup failures stop it: they would repeat on every image."""
    try:
        return work()
    except SETUP_ERRORS:
        raise
    except Exception as exc:
        message = str(exc) if isinstance(exc, SedicError) else f"{type(exc).__name__}: {exc}"
        message = message if path.name in message else f"{path.name}: {message}"
        directory.fail(path, message)
        print_error(message, exc)
        return None


def check_models(codec: Codec, profile: str, overrides: list[str]) -> None:
    """Stop before the first image when a plugin's weights are missing (one line)."""
    from .model_files import check

    for plugin in codec.plugins.values():
        for spec in plugin.required_models():
            status = check(spec)
            if not status.present:
                where = f"at {status.location} lacks {', '.join(status.missing)}" if status.missing else f"is not found at {status.location}"
                raise ModelNotFoundError(
                    f"{spec.what} = {spec.spec} {where}; fetch it where a network exists with "
                    f"`{pull_command(profile, overrides)}`, or set {spec.what} to a local copy"
                )


def pull_command(profile: str, overrides: list[str]) -> str:
    """The ``models pull`` command line for a profile and its ``--set`` overrides."""
    return f"sedic-kit models pull {shlex.quote(profile)}" + "".join(f" --set {shlex.quote(s)}" for s in overrides)


def summary_line(r: dict[str, Any]) -> str:
    """One line per image: bpp split by section, PSNR and times."""
    parts = ", ".join(f"{k} {v / (r['width'] * r['height']):.4f}" for k, v in r["bits"].items())
    quality = "identical" if r["psnr-rgb"] is None else f"PSNR {r['psnr-rgb']:.2f} dB"
    return (
        f"{Path(r['image']).name}: {r['bpp']:.5f} bpp ({parts}), {quality}, "
        f"encode {r['encoding_time']:.2f} s, decode {r['decoding_time']:.2f} s"
    )


def print_error(message: str, exc: BaseException | None = None) -> None:
    """``Error: message`` on stderr; under ``--debug`` the traceback first."""
    if DEBUG and exc is not None:
        err.print("".join(traceback.format_exception(exc)).rstrip(), highlight=False)
    err.print(Text.assemble(("Error:", "red"), f" {message}"))


@app.command()
def encode(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="Input image.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Output .sedic (default: IMAGE.sedic).")] = None,
    profile: ProfileOpt = "lite",
    set_: SetOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    target_bpp: TargetBppOpt = None,
    force: ForceOpt = False,
) -> None:
    """Encode one image into a .sedic file."""
    target = check_output(output or image.with_suffix(".sedic"), [image], force)
    codec = Codec.from_profile(profile, overrides=set_ or [], max_pixels=max_pixels)
    check_models(codec, profile, set_ or [])
    with ImageProgress(err, 1, "encoding") as bar, bar.item(f"encoding {image.name}"):
        result = codec.encode(image, target_bpp)
        path = result.save(target)
    parts = ", ".join(f"{k} {v}" for k, v in result.bits.items())
    out.print(f"{path}: {result.total_bits} bits, {result.bpp:.5f} bpp ({parts})")
    for note in result.notes:
        if note not in result.warnings:
            out.print(f"  {note}")
    tally = WarningTally()
    tally.add(image.name, result.warnings)
    tally.print(err, 1)


@app.command()
def decode(
    sedic: Annotated[Path, typer.Argument(metavar="FILE", help="Input .sedic file.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="IMAGE", help="Output image (default: FILE.decoded.png).")] = None,
    profile: Annotated[str, typer.Option("--profile", "-p", metavar="NAME", help="Profile giving local options (model paths, device).")] = "lite",
    set_: SetOpt = None,
    max_pixels: Annotated[
        int, typer.Option(metavar="N", help="The decoder's budget: refuse files declaring more pixels, or a stage costing more.")
    ] = DEFAULT_DECODE_PIXELS,
    force: ForceOpt = False,
) -> None:
    """Decode a .sedic file to an image."""
    target = check_output(output or sedic.with_suffix(".decoded.png"), [sedic], force)
    codec = Codec.from_profile(profile, overrides=set_ or [], max_decode_pixels=max_pixels)
    with ImageProgress(err, 1, "decoding") as bar, bar.item(f"decoding {sedic.name}"):
        image = codec.decode(sedic)
    path = save_image(image, target)
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
            problem = cls.import_problem()
            rows.append(
                {
                    "role": role.value,
                    "name": name,
                    "module": src.name,
                    "distribution": src.distribution,
                    "version": src.version,
                    "origin": src.origin,
                    "available": problem is None,
                    "missing": missing,
                    "problem": problem,
                    "extra": cls.extra,
                }
            )
    broken = [
        {"module": s.name, "distribution": s.distribution, "error": error} for s in registry.sources.values() for error in s.errors
    ]
    if as_json:
        out.print_json(json.dumps({"plugins": rows, "errors": broken}))
        return
    cells = [
        [*(str(r[k] or "-") for k in PLUGIN_COLUMNS[:-1]), "ok" if r["available"] else r["problem"] + (f" ([{r['extra']}])" if r["extra"] and r["missing"] else "")]
        for r in rows
    ]
    print_plugin_table(cells)
    for b in broken:
        out.print(Text.assemble(("broken:", "red"), f" {b['module']} ({b['distribution']}): {b['error']}"))


PLUGIN_COLUMNS = ("role", "name", "distribution", "version", "origin", "status")


def print_plugin_table(cells: list[list[str]]) -> None:
    """The plugins, one row each, nothing cut. Elsewhere than on a terminal plain columns, one line
    a row; on a terminal a table under one heading per role, whose name, distribution, version and
    origin keep their full width while the status wraps (a word longer than its column folds)."""
    if not out.is_terminal:
        widths = [max(len(c) for c in column) for column in zip(PLUGIN_COLUMNS, *cells)]
        for row in [list(PLUGIN_COLUMNS), *cells]:
            out.print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return
    table = Table(title="sedic-kit plugins", box=box.SIMPLE_HEAD, padding=(0, 2, 0, 0), pad_edge=False, title_justify="left")
    names = ["name", *(c[0] for c in cells), *(f"  {c[1]}" for c in cells)]  # role headings, then their plugins indented
    table.add_column("name", min_width=max(map(len, names)), no_wrap=True)
    for i, col in enumerate(PLUGIN_COLUMNS[2:-1], 2):
        table.add_column(col, min_width=max(len(x) for x in [col, *(c[i] for c in cells)]), no_wrap=True)
    table.add_column("status", overflow="fold", ratio=1)
    role = None
    for row in cells:
        if row[0] != role:
            table.add_row(Text(row[0], style="bold"))
            role = row[0]
        table.add_row(f"  {row[1]}", *row[2:])
    out.print(table)


@profiles_app.command("list")
def profiles_list() -> None:
    """List available profiles."""
    rows: list[tuple[str, str, str]] = []
    for name, file in available_profiles().items():
        try:
            desc = load_profile(file).description
        except SedicError as exc:
            desc = f"(invalid: {exc})"
        rows.append((name, desc, str(file)))
    width = max((len(name) for name, _, _ in rows), default=0)
    for name, desc, where in rows:
        out.print(Text.assemble((name.ljust(width), "bold"), f"  {desc}\n", " " * (width + 2), (where, "dim")))


@profiles_app.command("show")
def profiles_show(name: Annotated[str, typer.Argument(help="Profile name or path.")], set_: SetOpt = None) -> None:
    """Print a profile with everything it inherits resolved."""
    prof = load_profile(name, set_ or [])
    out.print_json(json.dumps({"name": prof.name, "path": str(prof.path), **prof.to_dict()}))


@profiles_app.command("check")
def profiles_check(name: Annotated[str, typer.Argument(help="Profile name or path.")], set_: SetOpt = None) -> None:
    """Check that every plugin of a profile is installed and its options are valid; list every problem."""
    problems = Problems(collect=True)
    prof = load_profile(name, set_ or [], problems)
    found = list(dict.fromkeys([*problems.found, *prof.problems()]))
    for problem in found:
        out.print(f"problem  {problem}")
    if found:
        raise SedicError(f"profile {prof.name}: {plural(len(found), 'problem')} (listed above)")
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
    memory: Annotated[bool, typer.Option("--memory", help="Print the GPU memory plan instead (exit 1 if it does not fit).")] = False,
) -> None:
    """List each model a profile needs: present or missing, files, sizes, cache location (exit 1 if any is missing)."""
    from .model_files import check, profile_models

    if memory:
        from .memory_plan import plan

        gpu = plan(load_profile(name, set_ or []))
        for line in gpu.lines():
            out.print(line)
        if not gpu.fits:
            raise typer.Exit(1)
        return

    rows: list[dict[str, Any]] = []
    for rm in profile_models(load_profile(name, set_ or [])):
        if rm.problem:
            rows.append({"role": rm.role, "plugin": rm.plugin, "status": "unavailable", "problem": rm.problem})
        if rm.libraries:
            rows.append({"role": rm.role, "plugin": rm.plugin, "status": "libraries", "problem": rm.libraries})
        for spec in rm.specs:
            st = check(spec)
            rows.append(
                {
                    "role": rm.role,
                    "plugin": rm.plugin,
                    "option": spec.what,
                    "model": spec.spec,
                    "status": st.state,
                    "location": st.location,
                    "size": st.size,
                    "files": [{"name": f, "size": n} for f, n in st.files],
                    "lacks": st.missing,
                    "url": spec.url,
                    "problem": st.problem,
                }
            )
    if as_json:
        out.print_json(json.dumps({"profile": name, "models": rows}))
    else:
        print_models(rows, name, set_ or [], files)
    if any(r["status"] in NOT_READY for r in rows):
        raise typer.Exit(1)


NOT_READY = ("missing", "partial", "libraries")
"""``models check`` rows that make it exit 1."""


def print_models(rows: list[dict[str, Any]], profile: str, overrides: list[str], files: bool) -> None:
    """``models check`` as plain text: one line per model, what to do about missing or partial ones."""
    for r in rows:
        if r["status"] == "unavailable":
            out.print(Text.assemble(("unavailable", "yellow"), f"  {r['role']} '{r['plugin']}': {r['problem']}"))
            continue
        if r["status"] == "libraries":  # the problem names the role and plugin
            out.print(Text.assemble(("libraries", "red"), f"  {r['problem']}"))
            continue
        present = r["status"] == "present"
        head = Text.assemble((r["status"].ljust(7), "green" if present else "red"), f"  {r['option']} = {r['model']} ({r['role']} '{r['plugin']}')")
        if r["status"] == "missing":
            out.print(head, f": not found at {r['location']}", sep="")
            wanted = r["url"] or ", ".join(f["name"] for f in r["files"]) or "the whole repository"
            out.print(f"    needs {wanted}")
            continue
        out.print(head, f": {_size(r['size'])} in {plural(len(r['files']), 'file')} at {r['location']}", sep="")
        if r["lacks"]:
            out.print(f"    lacks {', '.join(r['lacks'])}")
        for f in r["files"] if files else []:
            out.print(f"    {f['name']}  {_size(f['size'])}")
    if not rows:
        out.print(f"profile {profile} needs no model weights")
    if any(r["status"] == "libraries" for r in rows):
        out.print("install the missing libraries with the commands above")
    if any(r["status"] in ("missing", "partial") for r in rows):
        out.print(f"fetch the missing ones where a network exists: {pull_command(profile, overrides)}")


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
add_data_commands(app)


def split_global_flags(args: list[str]) -> tuple[list[str], set[str]]:
    """Remove ``--debug``/``--quiet`` from anywhere before a ``--``; return the rest and the flags seen."""
    end = args.index("--") if "--" in args else len(args)
    flags = {a for a in args[:end] if a in GLOBAL_FLAGS}
    return [a for i, a in enumerate(args) if i >= end or a not in GLOBAL_FLAGS], flags


def tidy_param(param: Any) -> Any:
    """Typer 0.29 prints ``{IMAGES}...`` in usage lines and ``<bool>``/``<str>`` beside flags and arguments: show names only."""
    if isinstance(param, TyperArgument):
        name = param.metavar or (param.name or "arg").upper() + ("..." if param.nargs != 1 else "")
        usage = name if param.required else f"[{name}]"
        param._usage_display_name = lambda: usage  # type: ignore[method-assign]
        param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    elif isinstance(param, TyperOption) and param.is_flag:
        param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    return param


def tidy_help(command: Any) -> None:
    """Apply :func:`tidy_param` to every parameter (help options included) of every command."""
    for param in command.params:
        tidy_param(param)
    make_help = command.get_help_option
    command.get_help_option = lambda ctx: tidy_param(make_help(ctx))
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, exit 1 (2 for usage); tracebacks only with --debug."""
    global DEBUG, COMMAND
    given = list(sys.argv[1:] if argv is None else argv)
    COMMAND = shlex.join(["sedic-kit", *given])
    args, flags = split_global_flags(given)
    DEBUG = "--debug" in flags or bool(os.environ.get("SEDIC_DEBUG"))
    progress.QUIET = "--quiet" in flags
    get_registry().register_commands(app)
    command = typer.main.get_command(app)
    tidy_help(command)
    try:
        rc = command.main(args=args, prog_name="sedic-kit", standalone_mode=False)
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
        print_error(str(exc), exc)
        return 1
    except Exception as exc:
        hint = "" if DEBUG else " (rerun with --debug for a traceback)"
        print_error(f"{type(exc).__name__}: {exc}{hint}", exc)
        return 1
    return rc if isinstance(rc, int) else 0
