"""The setup that decides a codec's bytes, and its fingerprint: resumed work is reused only
under the same fingerprint (``sedic-kit run``, ``sedic-kit eval``/``compare``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import __version__
from .codec import Codec


def setup_of(codec: Codec, **extra: Any) -> dict[str, Any]:
    """The profile (overrides applied), each role's plugin and version, the sedic-kit version,
    and ``extra`` (e.g. the target rate)."""
    return {
        "profile": codec.profile.to_dict() if codec.profile else None,
        "plugins": {r.value: [p.name, p.version] for r, p in codec.plugins.items()},
        "sedic_kit": __version__,
        **extra,
    }


def fingerprint(setup: dict[str, Any]) -> str:
    """A short hash of ``setup`` (key order does not matter)."""
    return hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """What changed between two setups, as ``profile.reference_codec.quality 5 -> 60``."""
    found: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key} {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")
    return found
