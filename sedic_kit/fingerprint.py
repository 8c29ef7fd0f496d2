"""The setup that decides a codec's bytes, and its fingerprint: resumed work is reused only
under the same fingerprint (``sedic-kit run``, ``sedic-kit eval``/``compare``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .version import __version__
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


def setup_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two setups (compared as JSON holds them), one
    ``profile.reference_codec.quality: 5 -> 60`` per changed value."""
    old, new = flatten(json.loads(json.dumps(before, default=str))), flatten(json.loads(json.dumps(now, default=str)))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"profile": {"describer": {"path": x}}}`` -> ``{"profile.describer.path": x}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out
