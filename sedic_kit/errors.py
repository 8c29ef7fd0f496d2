"""Errors shown to users as one line (the CLI prints ``str(error)`` and exits 1)."""


class SedicError(Exception):
    """Base class: a user-facing problem with a one-line explanation."""


class FormatError(SedicError):
    """A ``.sedic`` file is truncated, corrupt, of an unknown version or needs missing plugins."""


class ProfileError(SedicError):
    """A profile names an unknown plugin or key, or a value of the wrong type."""


class InputError(SedicError):
    """An input image cannot be read or is outside the supported limits."""


class ModelNotFoundError(SedicError):
    """Weights or a model directory needed by a plugin are absent."""


class PluginError(SedicError):
    """A plugin failed to load or broke its role's contract."""


class BackendError(SedicError):
    """A model backend failed: an API answered with an error, timed out or could not be reached."""


def shown(name: str, limit: int = 80) -> str:
    """``name`` (read from a file) as it may appear in a one-line message: every character that
    is not printable (newlines, control characters, ANSI escapes, bidirectional overrides) written
    as its escape, and cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)
    return text if len(text) <= limit else text[: limit - 3] + "..."
