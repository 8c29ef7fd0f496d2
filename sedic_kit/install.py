"""The pip commands error messages print: one source, matching the README's install rules.

Anything that pulls torch names ``torch==2.13.0`` in the same command (an unpinned torch pulls a
multi-GB CUDA build); CompressAI goes in with ``--no-deps``; the extras whose libraries pin their
own torch/transformers/torchvision get an environment of their own.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import metadata

TORCH_PIN = "torch==2.13.0"
COMPRESSAI = "compressai==1.2.8"
OWN_ENVIRONMENT = frozenset({"vllm", "groundingdino", "sam", "sam2"})
"""Extras the README installs in an environment of their own."""


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


def install_hint(extra: str) -> str:
    """The command that installs ``sedic-kit[extra]`` as the README says."""
    if extra == "compressai":
        return f"pip install {TORCH_PIN} 'sedic-kit[compressai]' && pip install --no-deps {COMPRESSAI}"
    if extra in OWN_ENVIRONMENT:
        return f"pip install 'sedic-kit[{extra}]' in an environment of its own (README: Semantic encoder backends)"
    pin = f"{TORCH_PIN} " if needs_torch(extra) else ""
    return f"pip install {pin}'sedic-kit[{extra}]'"


TORCHVISION_HINT = (
    "install torchvision built for your torch (PyPI's does not load beside the CPU torch 2.13.0 wheel: "
    f"use a matching pair from one index), then {install_hint('eval-full')}"
)
"""For metrics whose libraries import torchvision (LPIPS, DISTS, FID, KID, CLIP-IQA, NIQE)."""
