"""Describer ``csv``: caption and objects from a CSV file, one row per object.

Columns ``image,caption,name,details,box`` (``box`` is ``x0 y0 x1 y1`` in pixels, or empty). The
caption is the first non-empty one of the image's rows; a row with an empty ``name`` adds no
object. The file is ``describer.path``, else ``captions.csv`` beside the image.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from sedic_kit import DescriptionOptions, Describer, InputError, Payload, SemanticObject, SourceImage, apply_limits, hookimpl


class CsvOptions(DescriptionOptions):  # max_objects, name_words, detail_words, caption_words, plus:
    path: str | None = Field(None, description="the CSV file (default: captions.csv beside the image)")


class CsvDescriber(Describer[CsvOptions]):
    """Caption and objects from a CSV file."""

    name = "csv"

    def describe(self, source: SourceImage) -> Payload:
        w, h = source.size
        if self.options.path:
            table = Path(self.options.path).expanduser()
        elif source.path is not None:
            table = source.path.with_name("captions.csv")
        else:
            return Payload(w, h)  # an in-memory image: nothing to look up (the codec warns)
        if not table.is_file():
            return Payload(w, h)
        caption, objects = "", []
        with table.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                if source.path is None or row.get("image") != source.path.name:
                    continue
                caption = caption or (row.get("caption") or "").strip()
                if (row.get("name") or "").strip():
                    objects.append(SemanticObject(row["name"].strip(), (row.get("details") or "").strip(), parse_box(row.get("box"), table, line)))
        return apply_limits(Payload(w, h, caption, objects), self.options)


def parse_box(text: str | None, table: Path, line: int) -> tuple[int, int, int, int] | None:
    """``"x0 y0 x1 y1"`` -> a box; empty -> ``None`` (the grounder decides)."""
    if not text or not text.strip():
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split())
    except ValueError:
        raise InputError(f"{table}:{line}: box must be four integers 'x0 y0 x1 y1', got {text!r}") from None
    return (x0, y0, x1, y1)


@hookimpl
def register_describers(register: Callable[[type], None]) -> None:
    register(CsvDescriber)
