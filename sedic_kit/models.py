"""What a model is: its spec (local path, Hugging Face hub id or ``tiny/NAME``), the caches, and
the builders of tiny random test models.

Every model-backed plugin resolves its ``model`` option through
:func:`sedic_kit.model_files.resolve` and then loads the result with the library's own
``from_pretrained``/checkpoint code, so tiny models exercise the same loading path as real ones.
``tiny/NAME`` specs are built from configs by a builder registered here (seeded, deterministic),
written once to ``$SEDIC_CACHE/tiny`` and reused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .file_sets import FileSet

TINY_PREFIX = "tiny/"
TINY_VERSION = 2
TINY_BUILDERS: dict[str, Callable[[Path], None]] = {}


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
        TINY_BUILDERS[name] = builder
        return builder

    return wrap


def looks_like_path(spec: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is a filesystem path."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1


def hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return str(Path.home() / ".cache" / "huggingface" / "hub")
