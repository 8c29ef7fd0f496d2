"""What weights a profile needs, whether they are here, and fetching them (``sedic-kit models``).

A :class:`~sedic_kit.models.ModelSpec` is located without any network access: ``tiny/NAME``
specs are built locally, paths are checked, hub ids are looked up in the Hugging Face cache,
``url`` specs (single checkpoint files) in ``$SEDIC_CACHE/models`` and ``torch-hub`` specs
(e.g. CompressAI zoo weights) in the torch hub cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .download import Remote, fetch
from .errors import ModelNotFoundError, SedicError
from .file_sets import PUBLISHED, missing_files, pull_plan
from .models import TINY_BUILDERS, TINY_PREFIX, TINY_VERSION, ModelSpec, cache_root, hf_cache_dir, looks_like_path
from .roles import one_line


def tiny_names() -> list[str]:
    from .plugins import get_registry

    get_registry()  # plugin modules register their builders on import
    return sorted(TINY_BUILDERS)


def layout_tag() -> str:
    """transformers 4 and 5 save tokenizers differently (5 writes only ``tokenizer.json``, which 4's
    slow tokenizers cannot read): a cache shared by environments keeps one copy per major version."""
    try:
        return f"-transformers{metadata.version('transformers').split('.')[0]}"
    except metadata.PackageNotFoundError:
        return ""


def tiny_path(name: str) -> Path:
    """Directory of the tiny model ``name``, built on first use (atomically, safe across processes)."""
    names = tiny_names()
    if name not in TINY_BUILDERS:
        raise ModelNotFoundError(f"unknown tiny model '{name}' (available: {', '.join(names) or 'none'})")
    target = cache_root() / "tiny" / f"{name}-v{TINY_VERSION}{layout_tag()}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        TINY_BUILDERS[name](tmp)
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


if TYPE_CHECKING:
    from .profiles import Profile


class CheckpointMismatchError(ModelNotFoundError):
    """A checkpoint whose tensors do not match the model built from its config (missing, unexpected
    or mis-shaped keys): a setup problem, reported before the first image."""


def check_loading_info(info: dict[str, Any], what: str, path: Path) -> None:
    """Raise one line naming ``path`` and the first keys when a ``from_pretrained(..., output_loading_info=True)``
    report (transformers or diffusers) has missing, unexpected or mismatched keys."""
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k[0] if isinstance(k, (tuple, list)) else k) for k in info.get(kind) or ())
        if keys:
            problems.append(f"{len(keys)} {kind.replace('_', ' ')} (first: {', '.join(keys[:3])})")
    if problems:
        raise CheckpointMismatchError(f"{what}: the checkpoint at {path} does not fit its model: {'; '.join(problems)}")


@dataclass
class ModelStatus:
    """One needed model: ``present``, ``partial`` (``missing`` lists what its loader lacks) or
    ``missing``; where it is (or would be cached) and its files with sizes."""

    spec: ModelSpec
    state: str
    location: str
    files: list[tuple[str, int]] = field(default_factory=list)
    problem: str = ""
    missing: list[str] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return self.state == "present"

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


def is_published_name(spec: ModelSpec) -> bool:
    """``spec`` is the bare published file name of its url (``v2.pth``): it means the cached download,
    never a file of that name in the current directory (write ``./v2.pth`` for that)."""
    return bool(spec.url) and "/" not in spec.spec and spec.spec == spec.url.rsplit("/", 1)[-1]  # type: ignore[union-attr]


def locate(spec: ModelSpec) -> Path:
    """A local path for ``spec`` (never downloads); one-line :class:`ModelNotFoundError` otherwise."""
    if spec.source in FILE_SOURCES:
        path = Path(spec.spec).expanduser()
        if path.is_file() and not is_published_name(spec):
            return path
        cached = url_cache_path(spec)
        if cached.is_file():
            return cached
        cache = "the torch hub cache " if spec.source == "torch-hub" else ""
        raise ModelNotFoundError(
            f"{spec.what}: checkpoint {cached.name} is not in {cache}{cached.parent}; download {spec.url} there "
            f"(`sedic-kit models pull` does it where a network exists), or set {spec.what} to a local file"
        )
    needed = tuple(group[0] for group in spec.needs)
    return resolve(spec.spec, spec.what, spec.allow_patterns, files=needed + tuple(p for p in spec.allow_patterns if p not in needed))


def is_hub_id(spec: ModelSpec) -> bool:
    """A Hugging Face repository id (fetched by ``pull``), not a local path or a tiny model."""
    return spec.source == "huggingface" and not spec.spec.startswith(TINY_PREFIX) and not looks_like_path(spec.spec) and not Path(spec.spec).expanduser().exists()


def published_sizes(spec: ModelSpec) -> dict[str, int | None]:
    return PUBLISHED[spec.spec].files if spec.spec in PUBLISHED else {}


def incomplete(spec: ModelSpec, root: Path, fetch: str) -> str:
    """One line for a snapshot or directory that lacks files its loader needs ("" when complete)."""
    lacking = missing_files(root, spec.needs, published_sizes(spec)) if root.is_dir() else []
    if not lacking:
        return ""
    how = f"`{fetch}` fetches them where a network exists" if is_hub_id(spec) else f"copy them there or set {spec.what} to a complete copy"
    return f"{spec.what}: '{spec.spec}' at {root} lacks {', '.join(lacking)}; {how}"


def require(spec: ModelSpec, fetch: str = "sedic-kit models pull PROFILE") -> Path:
    """:func:`locate`, and every file of ``spec.needs`` there; one-line :class:`ModelNotFoundError` otherwise."""
    root = locate(spec)
    problem = incomplete(spec, root, fetch)
    if problem:
        raise ModelNotFoundError(problem)
    return root


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
        wanted = [(group[0], 0) for group in spec.needs] or [(p, 0) for p in spec.allow_patterns]
        return ModelStatus(spec, "missing", where, wanted, str(exc))
    lacking = missing_files(path, spec.needs, published_sizes(spec)) if path.is_dir() else []
    return ModelStatus(spec, "partial" if lacking else "present", str(path), _listing(path), missing=lacking)


def pull(spec: ModelSpec) -> Path:
    """Fetch ``spec`` into its cache (needs a network for hub ids and urls)."""
    if spec.source in FILE_SOURCES:
        url = spec.url or spec.spec
        try:  # resumable, renamed into place only when complete (the data sets' downloader)
            return fetch(Remote(url), url, url_cache_path(spec))
        except SedicError as exc:
            raise SedicError(f"{spec.what}: {exc}") from None
    if not is_hub_id(spec):
        return require(spec, "copy the missing files")
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        raise SedicError("pulling hub models needs huggingface_hub (pip install huggingface_hub)") from None
    try:
        listing = HfApi().list_repo_files(spec.spec)
    except Exception as exc:
        raise SedicError(f"{spec.what}: cannot list the files of '{spec.spec}' ({one_line(exc)})") from None
    files, unmet = pull_plan(listing, spec.needs, spec.allow_patterns)
    if unmet:
        raise SedicError(f"{spec.what}: repository '{spec.spec}' holds none of {'; '.join(unmet)}: set {spec.what} to a repository or directory that does")
    try:
        root = Path(snapshot_download(spec.spec, allow_patterns=files or None))
    except Exception as exc:
        raise SedicError(f"{spec.what}: cannot download '{spec.spec}' ({one_line(exc)})") from None
    problem = incomplete(spec, root, "sedic-kit models pull PROFILE")
    if problem:
        raise SedicError(f"{problem.split('; ')[0]} after the download")
    return root


@dataclass
class RoleModels:
    """The models one role's plugin needs, or why they cannot be listed (plugin not installed)."""

    role: str
    plugin: str
    specs: list[ModelSpec] = field(default_factory=list)
    problem: str = ""
    libraries: str = ""
    """Empty, or one line naming the plugin's missing libraries and the command that installs them."""


def profile_models(profile: Profile) -> list[RoleModels]:
    """``required_models()`` of every role of ``profile`` (plugins are built without loading weights)."""
    from .plugins import get_registry
    from .plugin_options import instantiate

    registry = get_registry()
    out = []
    for role, choice in profile.roles.items():
        try:
            plugin = instantiate(registry.get(role, choice.plugin), choice.options, choice.origin, str(profile.path))
            specs = plugin.required_models()  # may need the plugin's library (CompressAI's zoo table)
        except SedicError as exc:
            out.append(RoleModels(role.value, choice.plugin, problem=str(exc)))
            continue
        try:
            plugin.check_available()
            libraries = ""
        except SedicError as exc:
            libraries = str(exc)
        out.append(RoleModels(role.value, choice.plugin, specs, libraries=libraries))
    return out
