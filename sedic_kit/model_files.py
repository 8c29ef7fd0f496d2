"""What weights a profile needs, whether they are here, and fetching them (``sedic-kit models``).

A :class:`~sedic_kit.models.ModelSpec` is located without any network access: ``tiny/NAME``
specs are built locally, paths are checked, hub ids are looked up in the Hugging Face cache,
``url`` specs (single checkpoint files) in ``$SEDIC_CACHE/models`` and ``torch-hub`` specs
(e.g. CompressAI zoo weights) in the torch hub cache.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelNotFoundError, SedicError
from .models import TINY_PREFIX, ModelSpec, cache_root, hf_cache_dir, resolve
from .roles import one_line

if TYPE_CHECKING:
    from .profiles import Profile


@dataclass
class ModelStatus:
    """One needed model: where it is (or would be cached) and its files with sizes."""

    spec: ModelSpec
    present: bool
    location: str
    files: list[tuple[str, int]] = field(default_factory=list)
    problem: str = ""

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)


FILE_SOURCES = ("url", "torch-hub")
"""Sources of single checkpoint files, fetched from ``ModelSpec.url``."""


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` (``$TORCH_HOME/hub``, else ``~/.cache/torch/hub``) without importing torch."""
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return Path(home).expanduser() / "hub"


def url_cache_path(spec: ModelSpec) -> Path:
    """Where a ``url`` or ``torch-hub`` spec's single file is cached."""
    if not spec.url:
        raise SedicError(f"{spec.what}: url model '{spec.spec}' has no url")
    folder = torch_hub_dir() / "checkpoints" if spec.source == "torch-hub" else cache_root() / "models"
    return folder / spec.url.rsplit("/", 1)[-1]


def locate(spec: ModelSpec) -> Path:
    """A local path for ``spec`` (never downloads); one-line :class:`ModelNotFoundError` otherwise."""
    if spec.source in FILE_SOURCES:
        path = Path(spec.spec).expanduser()
        if path.is_file():
            return path
        cached = url_cache_path(spec)
        if cached.is_file():
            return cached
        cache = "the torch hub cache " if spec.source == "torch-hub" else ""
        raise ModelNotFoundError(
            f"{spec.what}: checkpoint {cached.name} is not in {cache}{cached.parent}; download {spec.url} there "
            f"(`sedic-kit models pull` does it where a network exists), or set {spec.what} to a local file"
        )
    return resolve(spec.spec, spec.what, spec.allow_patterns)


def _listing(path: Path) -> list[tuple[str, int]]:
    if path.is_file():
        return [(path.name, path.stat().st_size)]
    return sorted(
        (str(p.relative_to(path)), p.stat().st_size) for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def check(spec: ModelSpec) -> ModelStatus:
    """Whether ``spec`` is available locally, with its files, or where it would be cached."""
    try:
        path = locate(spec)
    except ModelNotFoundError as exc:
        if spec.source in FILE_SOURCES:
            where = str(url_cache_path(spec))
        elif spec.spec.startswith(TINY_PREFIX):
            where = str(cache_root() / "tiny")
        else:
            where = hf_cache_dir()
        wanted = [(p, 0) for p in spec.allow_patterns]
        return ModelStatus(spec, False, where, wanted, str(exc))
    return ModelStatus(spec, True, str(path), _listing(path))


def pull(spec: ModelSpec) -> Path:
    """Fetch ``spec`` into its cache (needs a network for hub ids and urls)."""
    if spec.source in FILE_SOURCES:
        target = url_cache_path(spec)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
            try:
                with urllib.request.urlopen(spec.url or spec.spec, timeout=60) as response:
                    while chunk := response.read(1 << 20):
                        tmp.write(chunk)
            except OSError as exc:
                Path(tmp.name).unlink(missing_ok=True)
                raise SedicError(f"{spec.what}: cannot download {spec.url} ({exc})") from None
        Path(tmp.name).replace(target)
        return target
    if spec.spec.startswith(TINY_PREFIX) or Path(spec.spec).expanduser().exists():
        return locate(spec)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise SedicError("pulling hub models needs huggingface_hub (pip install huggingface_hub)") from None
    try:
        return Path(snapshot_download(spec.spec, allow_patterns=list(spec.allow_patterns) or None))
    except Exception as exc:
        raise SedicError(f"{spec.what}: cannot download '{spec.spec}' ({one_line(exc)})") from None


@dataclass
class RoleModels:
    """The models one role's plugin needs, or why they cannot be listed (plugin not installed)."""

    role: str
    plugin: str
    specs: list[ModelSpec] = field(default_factory=list)
    problem: str = ""


def profile_models(profile: Profile) -> list[RoleModels]:
    """``required_models()`` of every role of ``profile`` (plugins are built without loading weights)."""
    from .plugins import get_registry
    from .profiles import instantiate

    registry = get_registry()
    out = []
    for role, choice in profile.roles.items():
        try:
            plugin = instantiate(registry.get(role, choice.plugin), choice.options, choice.origin, str(profile.path))
            specs = plugin.required_models()  # may need the plugin's library (CompressAI's zoo table)
        except SedicError as exc:
            out.append(RoleModels(role.value, choice.plugin, problem=str(exc)))
            continue
        out.append(RoleModels(role.value, choice.plugin, specs))
    return out
