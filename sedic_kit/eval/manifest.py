"""The manifest of a pulled set (``ROOT/NAME/manifest.json``): checking a copy, and which images
and protocol an evaluation of ``--data`` uses.

The manifest lists every image with its size and :func:`~.datasets.pixel_sha256`, and, for a
``crop768`` set, the hash of its cropped copy in ``crop768/`` (made once, at pull time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image
from pydantic import BaseModel, Field, ValidationError

from ..errors import SedicError
from ..imaging import DEFAULT_MAX_PIXELS, load_image
from .datasets import MANIFEST, ORIGINAL, SETS, DatasetSpec, Protocol, data_root, list_images, pixel_sha256, spec_named

FORMAT = 1


class ImageEntry(BaseModel):
    name: str = Field(pattern=r"^[^/\\.][^/\\]*$")
    """A plain file name (no folders, not hidden)."""
    width: int
    height: int
    pixel_sha256: str
    prepared_sha256: str | None = None
    """Pixel hash of the cropped copy (``crop768`` sets)."""


class SourceEntry(BaseModel):
    url: str
    size: int
    sha256: str
    checksum_source: str | None
    """The published list the size and SHA-256 were checked against (None: none is published)."""


class Manifest(BaseModel):
    format: int = FORMAT
    name: str
    title: str
    protocol: Protocol
    paper_set: str | None
    prepared: Literal["crop768"] | None
    """Subdirectory with the images prepared by ``protocol`` (``crop768``), None for ``as-is``."""
    pixel_source: str
    """What the pixel hashes were checked against: the set's published hashes, or the verified archives."""
    pillow: str
    """Pillow version that decoded the images and made the crops."""
    pulled: str
    sedic_kit_version: str
    sources: list[SourceEntry]
    images: list[ImageEntry]


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest of ``directory``, None where it has none; one error line when it is broken."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise SedicError(f"{path}: not a sedic-kit data manifest ({first})") from None


def hash_image(path: Path) -> tuple[int, int, str]:
    """Width, height and pixel hash of the image at ``path`` as the evaluation reads it."""
    image = load_image(path, DEFAULT_MAX_PIXELS).image
    return image.width, image.height, pixel_sha256(image)


def verify(directory: Path, name: str | None = None) -> tuple[int, list[str]]:
    """Check every image of ``directory`` by pixel hash: against its manifest (a pulled set) and the
    set's published hashes, or, for a plain folder, against set ``name``'s published hashes.
    Returns the number of images checked and one line per problem."""
    manifest = read_manifest(directory)
    if manifest is None:
        if name is None:
            raise SedicError(f"{directory} has no {MANIFEST}: name its set with --set ({', '.join(SETS)})")
        return _verify_plain(directory, spec_named(name))
    if name is not None and name != manifest.name:
        raise SedicError(f"{directory} holds {manifest.name}, not {name}")
    expected = SETS[manifest.name].pixel_sha256 if manifest.name in SETS else {}
    problems: list[str] = []
    originals = directory / ORIGINAL
    listed = {e.name for e in manifest.images}
    present = {p.name for p in list_images(originals)} if originals.is_dir() else set()
    problems += [f"{ORIGINAL}/{n}: not in the manifest" for n in sorted(present - listed)]
    for entry in manifest.images:
        problems += _check(originals / entry.name, entry.pixel_sha256, expected.get(entry.name), (entry.width, entry.height))
        if manifest.prepared:
            problems += _check(directory / manifest.prepared / entry.name, entry.prepared_sha256, None, (768, 768), manifest.pillow)
    return len(manifest.images), problems


def _verify_plain(directory: Path, spec: DatasetSpec) -> tuple[int, list[str]]:
    if not spec.pixel_sha256:
        raise SedicError(
            f"{spec.name} publishes no per-image pixel hashes: verify a copy made by `sedic-kit data pull {spec.name}` "
            "(its manifest records them from the checked archive)"
        )
    names = {p.name for p in list_images(directory)}
    problems = [f"{n}: not one of {spec.name}'s images" for n in sorted(names - set(spec.pixel_sha256))]
    for n, digest in spec.pixel_sha256.items():
        problems += _check(directory / n, None, digest, None)
    return len(spec.pixel_sha256), problems


def _check(path: Path, recorded: str | None, published: str | None, size: tuple[int, int] | None, pillow: str | None = None) -> list[str]:
    where = f"{path.parent.name}/{path.name}"
    if not path.is_file():
        return [f"{where}: missing"]
    try:
        w, h, digest = hash_image(path)
    except SedicError as exc:
        return [f"{where}: {exc}"]
    if size is not None and (w, h) != size:
        return [f"{where}: {w}x{h}, expected {size[0]}x{size[1]}"]
    if published is not None and digest != published:
        return [f"{where}: pixels differ from the published set's (pixel SHA-256 {digest[:16]}..., expected {published[:16]}...)"]
    if recorded is not None and digest != recorded:
        made = f"; the crop was made with Pillow {pillow}, this is {Image.__version__}" if pillow and pillow != Image.__version__ else ""
        return [f"{where}: pixels differ from the manifest's (pixel SHA-256 {digest[:16]}..., expected {recorded[:16]}...){made}"]
    return []


@dataclass(frozen=True)
class EvalData:
    """What ``--data`` evaluates: a folder of images, its protocol and the paper's set it compares with."""

    images: Path
    protocol: Protocol
    paper_set: str | None
    note: str = ""
    """Said once before the run (how the protocol was chosen)."""


def resolve(data: str, protocol: Protocol | None = None) -> EvalData:
    """``--data``: a pulled set's directory or its name (``kodak``: ``data_root()/kodak``), or a folder
    of images (protocol ``as-is`` and no paper numbers unless given). The protocol and paper set of
    a pulled set come from its manifest; ``protocol`` overrides the former."""
    path = Path(data).expanduser()
    if not path.is_dir() and data in SETS:
        path = data_root() / data
        if read_manifest(path) is None:
            raise SedicError(
                f"--data {data}: {data} is not pulled into {path.parent}; run `sedic-kit data pull {data}` "
                "(or `--data DIR` for a copy elsewhere)"
            )
    if not path.is_dir():
        raise SedicError(f"--data {data}: not a directory, nor one of the sets {', '.join(SETS)}")
    manifest = read_manifest(path)
    if manifest is None:
        chosen = protocol or "as-is"
        note = "" if protocol else (
            f"{path} has no {MANIFEST} (not a pulled set): protocol as-is; --protocol and --dataset set the protocol "
            "and the paper numbers drawn"
        )
        return EvalData(path, chosen, None, note)
    chosen = protocol or manifest.protocol
    images = path / manifest.prepared if manifest.prepared and chosen == manifest.protocol else path / ORIGINAL
    return EvalData(images, chosen, manifest.paper_set, f"{manifest.name}: {len(manifest.images)} images, protocol {chosen} (from {path / MANIFEST})")
