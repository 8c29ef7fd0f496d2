"""The ``sedic-kit data`` commands: list the evaluation sets, pull one, verify a copy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import SedicError
from ..progress import plural
from .datasets import SETS, data_root, spec_named

RootOpt = Annotated[
    Optional[Path],
    typer.Option("--root", metavar="DIR", help="Folder of pulled sets (default: $SEDIC_DATA, else $SEDIC_CACHE/data)."),
]
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.1f} MB"


def _on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def add_data_commands(app: typer.Typer) -> None:
    """Register the ``data`` sub-app on the main CLI."""
    data_app = typer.Typer(help="List, pull and verify the evaluation sets (Kodak, DIV2K validation, CLIC 2020 test).", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @data_app.command("list")
    def data_list(root: RootOpt = None) -> None:
        """The sets: images, protocol, download size and, where pulled, size on disk."""
        from .manifest import read_manifest

        root = root or data_root()
        table = Table(title=f"Evaluation sets (root {root})", title_justify="left")
        for column in ("name", "images", "protocol", "download", "on disk"):
            table.add_column(column, justify="left" if column in ("name", "protocol") else "right", no_wrap=True)
        for spec in SETS.values():
            pulled = read_manifest(root / spec.name) is not None
            table.add_row(
                spec.name, str(spec.images), spec.protocol, _size(spec.download_size),
                _size(_on_disk(root / spec.name)) if pulled else "not pulled",
            )
        out.print(table)
        for spec in SETS.values():
            out.print(f"{spec.name}: {spec.title}, from {spec.parts[0].remote.url.rsplit('/', 1)[0]}/")

    @data_app.command("pull")
    def data_pull(
        name: Annotated[str, typer.Argument(metavar="NAME", help=f"Set to fetch: {', '.join(SETS)}.")],
        root: RootOpt = None,
        mirror: Annotated[
            Optional[str],
            typer.Option(metavar="URL", help="Fetch the files of the same names from this URL or local folder instead (checked the same way)."),
        ] = None,
        keep_downloads: Annotated[bool, typer.Option("--keep-downloads", help="Keep the checked downloads in ROOT/.downloads/.")] = False,
    ) -> None:
        """Download a set (resumable), check its published SHA-256 and pixel hashes, extract it,
        crop it once where its protocol says so, and write ROOT/NAME/manifest.json."""
        from .manifest import read_manifest
        from .pull import pull

        spec = spec_named(name)
        root = root or data_root()
        if read_manifest(root / name) is not None:
            out.print(f"{name}: already pulled into {root / name}; `sedic-kit data verify {root / name}` checks it")
            return
        target = pull(spec, root, mirror, err, keep_downloads)
        out.print(f"{name}: {plural(spec.images, 'image')} ({spec.protocol}) in {target}, {_size(_on_disk(target))}")

    @data_app.command("verify")
    def data_verify(
        directory: Annotated[str, typer.Argument(metavar="DIR", help="A pulled set (or its name), or a folder of the set's images.")],
        set_name: Annotated[
            Optional[str], typer.Option("--set", metavar="NAME", help="The set a folder without a manifest holds.")
        ] = None,
        root: RootOpt = None,
    ) -> None:
        """Check every image by pixel hash against the manifest and the set's published hashes."""
        from .manifest import verify

        path = Path(directory).expanduser()
        if not path.is_dir() and directory in SETS:
            path = (root or data_root()) / directory
        if not path.is_dir():
            raise SedicError(f"{directory}: not a directory, nor a pulled set ({', '.join(SETS)})")
        checked, problems = verify(path, set_name)
        for line in problems:
            err.print(f"{path}: {line}", markup=False)
        if problems:
            raise SedicError(f"{path}: {plural(len(problems), 'problem')} in {plural(checked, 'image')}")
        out.print(f"{path}: all {plural(checked, 'image')} match their pixel hashes")
