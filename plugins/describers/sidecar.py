"""Weight-free describer: reads the description from a sidecar JSON or PNG text metadata.

Schema (as ``../shared/data/kodak-semantics``): ``{"caption": str, "objects": [{"name", "details",
"box": [x0, y0, x1, y1]}]}``, optionally a list of such dicts each with an ``"image"`` file name.
Lookup for ``photo.png``: the ``path`` option (file or directory), ``photo.png.json``,
``photo.json``, any ``descriptions*.json`` beside the image, then PNG text chunks ``sedic``
(JSON) or ``caption`` / ``prompt`` / ``Description`` (plain caption). Nothing found: empty.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import Field

from sedic_kit.bounded_json import loads_bounded
from sedic_kit.describe import DescriptionOptions, apply_limits
from sedic_kit.errors import InputError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.payload import Payload, SemanticObject, SourceImage
from sedic_kit.roles import Describer

TEXT_KEYS = ("caption", "prompt", "Description")
MAX_JSON_BYTES = 64 << 20
"""A descriptions file for a whole data set (Kodak's is 10 KB for 12 images)."""
MAX_JSON_DEPTH = 16
MAX_COORDINATE = 1 << 24
DESCRIPTIONS = "descriptions*.json"
"""Lists of descriptions (entries with an ``"image"`` file name) found beside an image."""


def description_files(directory: Path) -> list[Path]:
    """The ``descriptions*.json`` lists in ``directory``, in name order."""
    return sorted(directory.glob(DESCRIPTIONS))


class SidecarOptions(DescriptionOptions):
    path: str | None = Field(None, description="a description JSON file or a directory of them (default: beside the image)")


class SidecarDescriber(Describer[SidecarOptions]):
    """Caption and objects from a sidecar JSON file or PNG text metadata."""

    name = "sidecar"

    def describe(self, source: SourceImage) -> Payload:
        w, h = source.size
        entry = self.find(source)
        if entry is None:
            return Payload(w, h)
        return apply_limits(parse_entry(entry, w, h, self.where), self.options)  # type: ignore[arg-type]

    def find(self, source: SourceImage) -> dict[str, Any] | None:
        self.where = "PNG metadata"
        candidates: list[Path] = []
        if self.options.path:
            p = Path(self.options.path).expanduser()
            candidates += sorted(p.glob("*.json")) if p.is_dir() else [p]
            if not p.exists():
                raise InputError(f"describer.path: {p} does not exist")
        if source.path is not None:
            sp = source.path
            candidates += [sp.with_name(sp.name + ".json"), sp.with_suffix(".json"), *description_files(sp.parent)]
        name = source.path.name if source.path else None
        for cand in candidates:
            if not cand.is_file():
                continue
            entry = pick(load_json(cand), name, cand)
            if entry is not None:
                self.where = str(cand)
                return entry
        meta = source.text_metadata
        if "sedic" in meta:
            try:
                data = loads_bounded(meta["sedic"], max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH)
            except ValueError as exc:
                raise InputError(f"PNG text chunk 'sedic' is not valid JSON ({exc})") from None
            return pick(data, None, Path("PNG metadata"))
        for key in TEXT_KEYS:
            if meta.get(key, "").strip():
                return {"caption": meta[key], "objects": []}
        return None


def load_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes (at most {MAX_JSON_BYTES})")
        return loads_bounded(path.read_text(encoding="utf-8"), max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH)
    except (OSError, ValueError) as exc:  # ValueError: also UnicodeDecodeError and JSONDecodeError
        raise InputError(f"{path}: cannot read description JSON ({exc})") from None


def pick(data: Any, image_name: str | None, where: Path) -> dict[str, Any] | None:
    """The entry for ``image_name`` from a dict or a list of dicts with ``"image"`` keys."""
    if isinstance(data, dict):
        if "image" in data and image_name is not None and data["image"] != image_name:
            return None
        return data
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict) and (image_name is None or entry.get("image") == image_name):
                return entry
        return None
    raise InputError(f"{where}: expected a JSON object or a list of objects")


def parse_entry(entry: dict[str, Any], width: int, height: int, where: str) -> Payload:
    """Validate one description entry and turn it into a payload."""
    caption = entry.get("caption", "")
    objects_raw = entry.get("objects", [])
    if not isinstance(caption, str) or not isinstance(objects_raw, list):
        raise InputError(f"{where}: 'caption' must be a string and 'objects' a list")
    objects = []
    for i, raw in enumerate(objects_raw):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise InputError(f"{where}: objects[{i}] needs a string 'name'")
        details = raw.get("details", "")
        if not isinstance(details, str):
            raise InputError(f"{where}: objects[{i}].details must be a string")
        box = raw.get("box")
        if box is not None:
            if not (isinstance(box, list) and len(box) == 4 and all(_coordinate(v) for v in box)):
                raise InputError(f"{where}: objects[{i}].box must be [x0, y0, x1, y1] (finite numbers of at most {MAX_COORDINATE})")
            sx = width / entry["width"] if isinstance(entry.get("width"), int) and entry["width"] > 0 else 1.0
            sy = height / entry["height"] if isinstance(entry.get("height"), int) and entry["height"] > 0 else 1.0
            box = (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))
        objects.append(SemanticObject(raw["name"], details, box))
    return Payload(width, height, caption, objects)


def _coordinate(value: Any) -> bool:
    """A usable box coordinate: a finite number (not a bool) of sane magnitude."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and abs(value) <= MAX_COORDINATE


@hookimpl
def register_describers(register: Register) -> None:
    register(SidecarDescriber)
