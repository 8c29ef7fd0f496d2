"""The pip commands error messages print: one source, matching the README's install rules.

sedic-kit is not on a package index, so a hint installs it from where this copy came from: the
checkout it was installed from (``pip install -e '/path/to/sedic-kit[eval]'``, editable when
this one is), the wheel file, or the VCS URL (``direct_url.json``, PEP 610); without any of
those, ``pip install -e '.[eval]'`` run in a sedic-kit checkout. Anything that pulls torch names
``torch==2.13.0`` in the same command (an unpinned torch pulls a multi-GB CUDA build); CompressAI
goes in with ``--no-deps``; the extras whose libraries need their own torch (vllm) or a
torchvision matching torch get a new environment, as README "Install layout" and CI build them.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

TORCH_PIN = "torch==2.13.0"
VISION_PINS = "torch==2.14.1 torchvision==0.29.1"
"""A torch and torchvision from PyPI that load together (CI's second stage)."""
COMPRESSAI = "compressai==1.2.8"
SAM2 = "sam2==1.1.0"
OWN_ENVIRONMENT = {"vllm": ".venv-gpu", "groundingdino": ".venv-dino", "sam": ".venv-sam", "sam2": ".venv-sam2", "eval-full": ".venv-heavy"}
"""Extras installed in an environment of their own, and its folder (README, CI)."""
CHECKOUT = " (in a sedic-kit checkout)"


@cache
def extra_requirements() -> dict[str, list[str]]:
    """Requirement names per extra of the installed sedic-kit (``sedic-kit[x]`` kept as such)."""
    out: dict[str, list[str]] = {}
    for req in metadata.requires("sedic-kit") or []:
        marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        name = re.match(r"\s*([A-Za-z0-9_.\-]+(\[[^\]]*\])?)", req)
        if marker and name:
            out.setdefault(marker.group(1), []).append(name.group(1).lower().replace("_", "-"))
    return out


def needs_torch(extra: str) -> bool:
    """Whether installing ``sedic-kit[extra]`` pulls torch (directly or through another extra)."""
    for name in extra_requirements().get(extra, []):
        if name == "torch":
            return True
        nested = re.fullmatch(r"sedic-kit\[([^\]]+)\]", name)
        if nested and any(needs_torch(e.strip()) for e in nested.group(1).split(",")):
            return True
    return False


@cache
def installed_from() -> dict[str, Any] | None:
    """Where this sedic-kit came from, as a ``direct_url.json``: pip's record of the install, else
    the source tree it runs from (a checkout, not installed, is taken as an editable install);
    None when neither is known."""
    for dist in metadata.distributions(name="sedic-kit"):  # a checkout's own egg-info may come first on sys.path
        text = dist.read_text("direct_url.json")
        if text:
            return dict(json.loads(text))
    tree = Path(__file__).resolve().parents[1]
    if (tree / "pyproject.toml").is_file() and (tree / "plugins").is_dir():
        return {"url": tree.as_uri(), "dir_info": {"editable": True}}
    return None


def pip_target(extras: str, origin: dict[str, Any] | None) -> str | None:
    """``sedic-kit[extras]`` as pip takes it from ``origin`` (a ``direct_url.json``): the
    checkout (``-e`` when editable) or wheel file while it still exists, or the VCS URL at the
    installed commit; None when there is no such origin."""
    if not origin or not isinstance(origin.get("url"), str):
        return None
    url = origin["url"]
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict):
        at = f"@{vcs['commit_id']}" if vcs.get("commit_id") else ""
        return shlex.quote(f"sedic-kit[{extras}] @ {vcs.get('vcs', 'git')}+{url}{at}")
    parsed = urlparse(url)
    if parsed.scheme != "file" or not Path(unquote(parsed.path)).exists():
        return shlex.quote(f"sedic-kit[{extras}] @ {url}") if parsed.scheme in ("http", "https") else None
    target = shlex.quote(f"{unquote(parsed.path)}[{extras}]")
    editable = isinstance(origin.get("dir_info"), dict) and origin["dir_info"].get("editable")
    return f"-e {target}" if editable else target


def install_hint(extra: str) -> str:
    """The command that installs ``sedic-kit[extra]`` as the README says, from where this copy was installed."""
    return hint_for(extra, installed_from())


def hint_for(extra: str, origin: dict[str, Any] | None) -> str:
    """:func:`install_hint` for a sedic-kit installed from ``origin`` (a ``direct_url.json``; None: unknown)."""
    extras = "vllm,diffusion,transformers,compressai" if extra == "vllm" else extra  # README: the GPU environment
    target = pip_target(extras, origin)
    where = "" if target else CHECKOUT
    target = target or f"-e {shlex.quote(f'.[{extras}]')}"
    if extra == "compressai":
        return f"pip install {TORCH_PIN} {target} && pip install --no-deps {COMPRESSAI}{where}"
    if extra not in OWN_ENVIRONMENT:
        pin = f"{TORCH_PIN} " if needs_torch(extra) else ""
        return f"pip install {pin}{target}{where}"
    venv = OWN_ENVIRONMENT[extra]
    new = f"python3 -m venv {venv} && . {venv}/bin/activate && "
    if extra == "vllm":  # vllm brings the CUDA torch it was built for: never pin one
        return f"{new}pip install {target} && pip install --no-deps {COMPRESSAI}{where}"
    if extra == "sam2":  # its build needs torch present: no build isolation (README)
        return f"{new}pip install {VISION_PINS} setuptools && SAM2_BUILD_CUDA=0 pip install --no-build-isolation {SAM2} && pip install {target}{where}"
    return f"{new}pip install {VISION_PINS} {target}{where}"


TORCHVISION_HINT = (
    "install it in an environment of its own, with a torchvision built for its torch (PyPI's does not load "
    f"beside the CPU torch 2.13.0 wheel): {install_hint('eval-full')}"
)
"""For metrics whose libraries import torchvision (LPIPS, DISTS, FID, KID, CLIP-IQA, NIQE)."""
