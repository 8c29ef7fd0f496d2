"""Where model weights come from: local paths, Hugging Face hub ids, and tiny random test models.

Every model-backed plugin resolves its ``model`` option through :func:`resolve` and then loads
the result with the library's own ``from_pretrained``/checkpoint code, so tiny models exercise
the same loading path as real ones. ``tiny/NAME`` specs are built from configs by a registered
builder (seeded, deterministic), written once to ``$SEDIC_CACHE/tiny`` and reused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import ModelNotFoundError
from .file_sets import FileSet

TINY_PREFIX = "tiny/"
TINY_VERSION = 2
_TINY_BUILDERS: dict[str, Callable[[Path], None]] = {}


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin needs: ``what`` names the option (e.g. ``restorer.model``).

    ``needs``: the files its loader reads (:mod:`sedic_kit.file_sets`), which ``models pull`` fetches
    from the repository's real listing and ``models check`` verifies; ``allow_patterns``: extra files
    fetched when the repository has them.
    """

    what: str
    spec: str
    source: str = "huggingface"  # or "url" (a single file cached under $SEDIC_CACHE) or "torch-hub"
    allow_patterns: tuple[str, ...] = field(default_factory=tuple)
    url: str | None = None
    needs: FileSet = ()


def cache_root() -> Path:
    """``$SEDIC_CACHE``, else ``~/.cache/sedic-kit``."""
    return Path(os.environ.get("SEDIC_CACHE", Path.home() / ".cache" / "sedic-kit")).expanduser()


def register_tiny(name: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    """Decorator: ``builder(directory)`` writes a tiny random model usable as ``tiny/NAME``."""

    def wrap(builder: Callable[[Path], None]) -> Callable[[Path], None]:
        _TINY_BUILDERS[name] = builder
        return builder

    return wrap


def tiny_names() -> list[str]:
    from .plugins import get_registry

    get_registry()  # plugin modules register their builders on import
    return sorted(_TINY_BUILDERS)


def _layout_tag() -> str:
    """transformers 4 and 5 save tokenizers differently (5 writes only ``tokenizer.json``, which 4's
    slow tokenizers cannot read): a cache shared by environments keeps one copy per major version."""
    try:
        return f"-transformers{metadata.version('transformers').split('.')[0]}"
    except metadata.PackageNotFoundError:
        return ""


def tiny_path(name: str) -> Path:
    """Directory of the tiny model ``name``, built on first use (atomically, safe across processes)."""
    names = tiny_names()
    if name not in _TINY_BUILDERS:
        raise ModelNotFoundError(f"unknown tiny model '{name}' (available: {', '.join(names) or 'none'})")
    target = cache_root() / "tiny" / f"{name}-v{TINY_VERSION}{_layout_tag()}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        _TINY_BUILDERS[name](tmp)
        (tmp / ".complete").write_text("ok\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def looks_like_path(spec: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is a filesystem path."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1


def hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return str(Path.home() / ".cache" / "huggingface" / "hub")


def resolve(
    spec: str, what: str, allow_patterns: tuple[str, ...] = (), fetch: str = "sedic-kit models pull PROFILE", files: tuple[str, ...] = ()
) -> Path:
    """A local path for ``spec``: ``tiny/NAME``, an existing path, or a hub id already cached.

    Never downloads: a missing model raises :class:`ModelNotFoundError` naming the repository,
    the files and the cache directory, and ``fetch``, the command that fetches it.
    """
    if spec.startswith(TINY_PREFIX):
        return tiny_path(spec[len(TINY_PREFIX) :])
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if looks_like_path(spec):
        raise ModelNotFoundError(f"{what}: {spec} does not exist")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelNotFoundError(f"{what}: loading '{spec}' needs huggingface_hub (pip install huggingface_hub)") from None
    try:
        return Path(snapshot_download(spec, allow_patterns=list(allow_patterns) or None, local_files_only=True))
    except Exception:
        named = files or allow_patterns  # the files the loader needs, where the caller knows them
        listed = f" ({', '.join(named)})" if named else ""
        raise ModelNotFoundError(
            f"{what}: model '{spec}'{listed} is not in the Hugging Face cache {hf_cache_dir()}; "
            f"fetch it with `{fetch}` where a network exists, or set {what} to a local directory"
        ) from None
