"""``sedic-kit data pull``: fetch a set, check it, extract it atomically and write its manifest.

Downloads go to ``ROOT/.downloads/NAME/`` (resumable ``.part`` files, checked against the
published size and SHA-256); the images are extracted into a temporary ``ROOT/.NAME.*.tmp/``,
checked by pixel hash where the set publishes them, cropped once for a ``crop768`` set, and the
directory is renamed to ``ROOT/NAME/`` only when all of that succeeded.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .. import __version__
from .. import progress as cli_progress
from ..files import save_png, write_atomic
from ..download import Remote, fetch, sha256_file
from ..errors import SedicError
from ..imaging import DEFAULT_MAX_PIXELS, load_image
from ..progress import ImageProgress, shows_progress
from .datasets import MANIFEST, ORIGINAL, DatasetSpec, Part, crop768, pixel_sha256
from .manifest import ImageEntry, Manifest, SourceEntry, read_manifest

MAX_IMAGE_BYTES = 1 << 30
"""Largest image an archive may declare (the sets' largest PNGs are tens of MB)."""
STEP, LARGE = 0.1, 10 << 20
"""Off a terminal, a line each time a download over ``LARGE`` bytes passes another tenth."""


def source_url(remote: Remote, mirror: str | None) -> str:
    """``remote.url``, or the file of the same name under ``mirror`` (a URL or a local directory)."""
    if mirror is None:
        return remote.url
    local = Path(mirror).expanduser()
    if "://" not in mirror:
        if not local.is_dir():
            raise SedicError(f"--mirror {mirror}: not a URL (http://, https://, file://) nor a local folder")
        mirror = local.resolve().as_uri()
    elif mirror.split("://", 1)[0].lower() not in ("http", "https", "file"):
        raise SedicError(f"--mirror {mirror}: expected an http://, https:// or file:// URL, or a local folder")
    return f"{mirror.rstrip('/')}/{remote.filename}"


def pull(spec: DatasetSpec, root: Path, mirror: str | None = None, console: Console | None = None, keep_downloads: bool = False) -> Path:
    """Fetch ``spec`` into ``root / spec.name`` (kept as it is when already pulled)."""
    console = console or Console(stderr=True, highlight=False)
    target = root / spec.name
    if read_manifest(target) is not None:
        return target
    if target.exists():
        raise SedicError(f"{target} exists and is not a pulled set (no {MANIFEST}); move it away or choose another --root")
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{spec.name}.*.tmp"):  # left by a pull that was killed
        shutil.rmtree(stale, ignore_errors=True)
    downloads = root / ".downloads" / spec.name
    files = download(spec, downloads, mirror, console)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".tmp", dir=root))
    try:
        entries = extract(spec, files, staging, console, mirror)
        sources = [
            SourceEntry(url=source_url(p.remote, mirror), size=f.stat().st_size, sha256=p.remote.sha256 or sha256_file(f), checksum_source=p.remote.checksum_source)
            for p, f in zip(spec.parts, files)
        ]
        manifest = Manifest(
            name=spec.name, title=spec.title, protocol=spec.protocol, paper_set=spec.paper_set,
            prepared=None if spec.protocol == "as-is" else spec.protocol,
            pixel_source=spec.pixel_source if spec.pixel_sha256 else "computed at pull time from archives whose size and SHA-256 matched the published ones",
            pillow=Image.__version__, pulled=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            sedic_kit_version=__version__, sources=sources, images=entries,
        )
        write_atomic(staging / MANIFEST, (manifest.model_dump_json(indent=2) + "\n").encode())
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_downloads:
        shutil.rmtree(downloads, ignore_errors=True)
    return target


def download(spec: DatasetSpec, downloads: Path, mirror: str | None, console: Console) -> list[Path]:
    """Every part of ``spec`` in ``downloads``, checked; progress on ``console``."""
    files = []
    with transfers(console) as start:
        for i, part in enumerate(spec.parts, 1):
            label = part.remote.filename if len(spec.parts) == 1 else f"{part.remote.filename} ({i} of {len(spec.parts)})"
            files.append(fetch(part.remote, source_url(part.remote, mirror), downloads / part.remote.filename, start(f"{spec.name}: {label}")))
    return files


@contextmanager
def transfers(console: Console) -> Iterator[Callable[[str], Callable[[int, int | None], None]]]:
    """``start(label)`` gives the progress callback of one download: a bar with bytes, speed and
    ETA on a terminal; off one, a line per file and per tenth of a large file (none with --quiet)."""
    bar = shows_progress(console)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not bar) as progress:
        def start(label: str) -> Callable[[int, int | None], None]:
            task = progress.add_task(label, total=None)
            said = [-1]

            def update(done: int, total: int | None) -> None:
                if bar:  # a finished file leaves the display
                    progress.update(task, completed=done, total=total, visible=total is None or done < total)
                    return
                tenth = int(done / total / STEP) if total else 0
                if cli_progress.QUIET or not (said[0] < 0 or (total and total > LARGE and tenth > said[0])):
                    return
                size = "unknown size" if total is None else f"{total / 1e6:.1f} MB"
                if said[0] < 0:
                    console.print(f"{label}: downloading, {size}" + (f", resuming at {done / 1e6:.1f} MB" if done else ""), highlight=False)
                elif total:
                    console.print(f"{label}: {100 * done // total}% of {size}", highlight=False)
                said[0] = tenth

            return update

        yield start


def extract(spec: DatasetSpec, files: list[Path], staging: Path, console: Console, mirror: str | None) -> list[ImageEntry]:
    """The images of ``files`` into ``staging/original/`` (and ``staging/crop768/``), checked; their entries."""
    originals = staging / ORIGINAL
    originals.mkdir()
    for part, path in zip(spec.parts, files):
        names = unzip(path, originals, part) if part.archive else [_copy_image(path, originals)]
        if len(names) != part.images:
            raise SedicError(f"{part.remote.filename}: {len(names)} images, expected {part.images}; nothing was extracted")
    singles = {p.remote.filename: (source_url(p.remote, mirror), f) for p, f in zip(spec.parts, files) if not p.archive}
    entries = []
    paths = sorted(originals.iterdir())
    with ImageProgress(console, len(paths), "checking" if spec.protocol == "as-is" else "checking and cropping") as bar:
        for path in paths:
            with bar.item(f"{spec.name}: {path.name}"):
                image = load_image(path, DEFAULT_MAX_PIXELS).image
                digest = pixel_sha256(image)
                if spec.pixel_sha256 and digest != spec.pixel_sha256.get(path.name):
                    url, file = singles.get(path.name, (path.name, None))
                    if file is not None:  # a single file: fetched again next time
                        file.unlink(missing_ok=True)
                    expected = spec.pixel_sha256.get(path.name, "none")
                    raise SedicError(
                        f"{path.name} from {url}: pixels differ from the published set's (pixel SHA-256 {digest[:16]}..., "
                        f"expected {expected[:16]}..., {spec.pixel_source}); nothing was extracted"
                    )
                prepared = None
                if spec.protocol == "crop768":
                    crop = crop768(image)
                    save_png(crop, staging / "crop768" / path.name)
                    prepared = pixel_sha256(crop)
                entries.append(ImageEntry(name=path.name, width=image.width, height=image.height, pixel_sha256=digest, prepared_sha256=prepared))
    return entries


def unzip(archive: Path, dest: Path, part: Part) -> list[str]:
    """The PNG images of ``archive`` (in any folder) into ``dest``, flat; checked before extracting."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [
                m for m in zf.infolist()
                if not m.is_dir() and m.filename.lower().endswith(".png")
                and not any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(m.filename).parts)
            ]
            names = [PurePosixPath(m.filename).name for m in members]
            if len(members) != part.images:
                return names
            taken = {p.name for p in dest.iterdir()}
            for m, name in zip(members, names):
                if name in taken:
                    raise SedicError(f"{archive.name}: two images named {name!r}; nothing was extracted")
                if m.file_size > MAX_IMAGE_BYTES:
                    raise SedicError(f"{archive.name}: {name} declares {m.file_size} bytes, above {MAX_IMAGE_BYTES}; nothing was extracted")
                taken.add(name)
            for m, name in zip(members, names):
                with zf.open(m) as src, (dest / name).open("xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            return names
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise SedicError(f"{archive.name}: broken zip archive ({exc}); nothing was extracted") from None


def _copy_image(path: Path, dest: Path) -> str:
    shutil.copyfile(path, dest / path.name)
    return path.name
