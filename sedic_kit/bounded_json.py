"""JSON from untrusted sources (file headers, sidecar descriptions) with size and depth bounds."""

from __future__ import annotations

import json
from typing import Any


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads_bounded(raw: str | bytes, *, max_bytes: int, max_depth: int) -> Any:
    """Parse ``raw`` as strict JSON (no NaN/Infinity) of at most ``max_bytes`` and ``max_depth`` levels.

    Every failure is a ``ValueError`` with a one-line message (``json.JSONDecodeError`` is one).
    """
    if len(raw) > max_bytes:
        raise ValueError(f"JSON of {len(raw)} bytes (at most {max_bytes})")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"JSON nested too deeply (at most {max_depth} levels)") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"JSON nested too deeply (at most {max_depth} levels)")
            stack += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return value
