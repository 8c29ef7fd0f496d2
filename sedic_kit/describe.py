"""Description limits shared by all describers (paper: J <= 3, l_n, l_d <= 30, l_all <= 50).

Besides the paper's word limits every field is bounded in characters, so the text section of a
file has a hard maximum size that decoders enforce while decompressing (:func:`max_text_bytes`).
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from .payload import Payload
from .roles import Options

MAX_OBJECTS = 3
"""The paper's J: no file codes more objects than this, whatever the describer returns."""
MAX_FIELD_CHARS = 600
"""The most characters in one text field (caption, object name or details): 50 words of 12."""
MAX_TEXTS = 1 + 2 * MAX_OBJECTS


class DescriptionOptions(Options):
    """Profile options every describer accepts: the paper's J, l_n, l_d and l_all."""

    max_objects: int = Field(MAX_OBJECTS, ge=0, le=MAX_OBJECTS, description="J: at most this many objects")
    name_words: int = Field(3, ge=1, description="l_n: words per object name")
    detail_words: int = Field(30, ge=0, le=30, description="l_d: words per object description")
    caption_words: int = Field(50, ge=0, le=50, description="l_all: words in the overall caption")
    field_chars: int = Field(MAX_FIELD_CHARS, ge=1, le=MAX_FIELD_CHARS, description="characters per field (after the word limits)")


def truncate_words(text: str, limit: int, chars: int = MAX_FIELD_CHARS) -> str:
    """The first ``limit`` whitespace-separated words of ``text``, whitespace normalised, at most ``chars`` long.

    A cut inside a word keeps the whole words before it, or the first ``chars`` characters of a
    single overlong word.
    """
    text = " ".join(text.split()[:limit])
    if len(text) <= chars:
        return text
    return text[: chars + 1].rsplit(" ", 1)[0][:chars]


def max_text_bytes() -> int:
    """The largest text payload a valid file can carry: the joined-texts layout of the text coders
    (a varint count, then a varint length and the UTF-8 bytes of each field, 4 bytes per character at most)."""
    return 1 + MAX_TEXTS * (3 + 4 * MAX_FIELD_CHARS)


def text_limit_problem(texts: list[str]) -> str | None:
    """What in ``texts`` (``Payload.texts()`` order) breaks the limits every decoder enforces, if anything."""
    if len(texts) > MAX_TEXTS:
        return f"{len(texts)} strings, at most {MAX_TEXTS} ({MAX_OBJECTS} objects)"
    longest = max((len(t) for t in texts), default=0)
    if longest > MAX_FIELD_CHARS:
        return f"a field of {longest} characters, at most {MAX_FIELD_CHARS}"
    return None


def apply_limits(payload: Payload, options: DescriptionOptions) -> Payload:
    """Enforce J and the word limits on a parsed description."""
    objects = [
        replace(
            o,
            name=truncate_words(o.name, options.name_words, options.field_chars),
            details=truncate_words(o.details, options.detail_words, options.field_chars),
        )
        for o in payload.objects[: options.max_objects]
        if o.name.strip()
    ]
    caption = truncate_words(payload.caption, options.caption_words, options.field_chars)
    return replace(payload, caption=caption, objects=objects)
