"""A plugin built from its option table: validated, and every bad option named where it was set."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .errors import ProfileError
from .roles import Plugin


def instantiate(cls: type[Plugin], options: dict[str, Any], origin: dict[str, str] | None = None, where: str = "") -> Plugin:
    """Validate ``options`` against ``cls.Options`` and build the plugin."""
    try:
        return cls(cls.Options(**options))
    except ValidationError as exc:
        raise ProfileError(option_messages(cls, exc, origin, where)[0]) from None


def option_messages(cls: type[Plugin], exc: ValidationError, origin: dict[str, str] | None = None, where: str = "") -> list[str]:
    """One line per bad option of ``cls``, naming where it was set."""
    messages = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "?"
        src = (origin or {}).get(key, where)
        if err["type"] == "extra_forbidden":
            valid = ", ".join(["plugin", *cls.Options.model_fields]) or "plugin"
            msg = f"unknown key for {cls.role.value} '{cls.name}' (valid: {valid})"
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})"
        messages.append(f"{src}: {cls.role.value}.{key}: {msg}")
    return messages
