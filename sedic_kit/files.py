"""Writing output files whole or not at all: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from .errors import InputError


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and rename (no partial files)."""
    with _temporary_beside(path) as tmp:
        tmp.write_bytes(data)
    return path


def save_png(image: Image.Image, path: Path) -> Path:
    """Write ``image`` as PNG via a temporary file and rename (no partial files)."""
    return save_image(image, path, "PNG")


def save_image(image: Image.Image, path: Path, format: str | None = None) -> Path:
    """Write ``image`` in ``format`` (default: the one ``path``'s suffix names) via a temporary
    file and rename (no partial files)."""
    fmt = format or Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown image file extension '{path.suffix}' (use .png, .webp, .jpg, ...)")
    with _temporary_beside(path) as tmp:
        image.save(tmp, fmt)
    return path


def _file_mode() -> int:
    """0o666 less the process umask (what ``open`` would give a new file)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A uniquely named temporary file in ``path``'s directory, renamed to ``path`` when the
    block succeeds and removed when it fails (concurrent writers never share a temporary name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        try:
            os.fchmod(fd, _FILE_MODE)  # mkstemp makes it private; outputs get the usual mode
        finally:
            os.close(fd)
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
