"""Where a command may write: never over one of its inputs, and over an existing file only with ``--force``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import InputError


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (links resolved; neither need exist)."""
    return Path(a).resolve() == Path(b).resolve()


def check_output(output: Path, inputs: Sequence[Path], force: bool) -> Path:
    """``output``, once it is sure that writing it replaces no input and (without ``force``) no
    existing file; one-line :class:`InputError` otherwise, raised before any work is done."""
    for source in inputs:
        if same_file(output, source):
            raise InputError(f"{output}: is the input {source}; choose another output with -o")
    if output.is_dir():
        raise InputError(f"{output}: is a directory; give a file name with -o")
    if output.exists() and not force:
        raise InputError(f"{output} exists; pass --force to replace it, or -o to write elsewhere")
    return output
