"""Description limits shared by all describers (paper: J <= 3, l_n, l_d <= 30, l_all <= 50)."""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from .payload import Payload
from .roles import Options

MAX_OBJECTS = 3
"""The paper's J: no file codes more objects than this, whatever the describer returns."""


class DescriptionOptions(Options):
    """Profile options every describer accepts: the paper's J, l_n, l_d and l_all."""

    max_objects: int = Field(MAX_OBJECTS, ge=0, le=MAX_OBJECTS, description="J: at most this many objects")
    name_words: int = Field(3, ge=1, description="l_n: words per object name")
    detail_words: int = Field(30, ge=0, le=30, description="l_d: words per object description")
    caption_words: int = Field(50, ge=0, le=50, description="l_all: words in the overall caption")


def truncate_words(text: str, limit: int) -> str:
    """The first ``limit`` whitespace-separated words of ``text``, whitespace normalised."""
    return " ".join(text.split()[:limit])


def apply_limits(payload: Payload, options: DescriptionOptions) -> Payload:
    """Enforce J and the word limits on a parsed description."""
    objects = [
        replace(o, name=truncate_words(o.name, options.name_words), details=truncate_words(o.details, options.detail_words))
        for o in payload.objects[: options.max_objects]
        if o.name.strip()
    ]
    return replace(payload, caption=truncate_words(payload.caption, options.caption_words), objects=objects)
