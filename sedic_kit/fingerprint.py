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


def setup_changes(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """What differs between two setups, one ``profile.reference_codec.quality: 5 -> 60`` per changed value."""
    found: list[str] = []
    for key in sorted(set(before) | set(now), key=str):
        old, new = before.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += setup_changes(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return found
