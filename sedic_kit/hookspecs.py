"""Hook specifications: every extension point of sedic-kit.

Each ``register_*`` hook receives a ``register`` callable; call it once per plugin class.
"""

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("sedic_kit")
hookimpl = pluggy.HookimplMarker("sedic_kit")

Register = Callable[[type], None]


@hookspec
def register_describers(register: Register) -> None:
    """Register describers: image -> caption and object names/details."""


@hookspec
def register_grounders(register: Register) -> None:
    """Register grounders: verify objects in the image, set boxes, drop hallucinations."""


@hookspec
def register_segmenters(register: Register) -> None:
    """Register segmenters: object boxes -> full-size masks."""


@hookspec
def register_reference_codecs(register: Register) -> None:
    """Register reference codecs: code the extremely compressed reference image."""


@hookspec
def register_entropy_coders(register: Register) -> None:
    """Register entropy coders: lossless text coders and mask coders."""


@hookspec
def register_restorers(register: Register) -> None:
    """Register restorers: reference image + semantics -> reconstruction."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``sedic-kit`` typer app."""
