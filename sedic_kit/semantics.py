"""Whether an encode carried the semantics its profile expects (shared by ``run``, ``eval`` and ``compare``)."""

from __future__ import annotations

from .payload import Payload

NO_SEMANTICS = "coded without semantics"
"""The start of every :func:`missing_semantics` message (one warning kind however many images)."""


def missing_semantics(describer: str, payload: Payload) -> str | None:
    """Why ``payload`` lacks the caption and objects that a profile with ``describer`` should transmit.

    ``None`` when it carries a caption or objects, or when the profile asks for none (describer
    ``none``): the file then holds what the profile meant it to. Otherwise the file is the
    reference alone, which a comparison would silently count as the semantic codec's result.
    """
    if describer == "none" or payload.caption or payload.objects:
        return None
    hint = " (put <image>.json beside the images or pass --set describer.path=DIR)" if describer == "sidecar" else ""
    return f"{NO_SEMANTICS}: describer '{describer}' gave no caption and no objects, so only the reference was coded{hint}"
