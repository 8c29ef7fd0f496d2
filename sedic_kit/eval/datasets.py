"""Evaluation image sets and the paper's preprocessing protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from PIL import Image

from ..errors import InputError
from ..imaging import load_image
from ..payload import SourceImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm"}
Protocol = Literal["as-is", "crop768"]
"""``as-is``: Kodak; ``crop768``: DIV2K/CLIC (resize to min side 768, center crop 768x768)."""
PAPER_SET_SIZES = {"kodak": 24, "div2k": 100, "clic2020": 428}
"""Images in each of the paper's test sets (Section IV, "Test Data")."""


def list_images(data: Path) -> list[Path]:
    """The images of a dataset directory (sorted by name)."""
    if not data.is_dir():
        raise InputError(f"{data}: not a directory of images")
    paths = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"{data}: no images found")
    return paths


def crop768(image: Image.Image, side: int = 768) -> Image.Image:
    """Resize so the shorter side is ``side`` (bicubic), then center-crop ``side`` x ``side``."""
    w, h = image.size
    scale = side / min(w, h)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    if size != (w, h):
        image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    return image.crop((left, top, left + side, top + side))


def infer(data: Path) -> tuple[str | None, Protocol]:
    """Paper dataset name (for quoted numbers) and protocol guessed from the directory name."""
    name = data.resolve().name.lower()
    for key in ("kodak", "div2k", "clic2020"):
        if key[:4] in name:
            return key, "as-is" if key == "kodak" else "crop768"
    return None, "as-is"


def prepare(path: Path, protocol: Protocol, max_pixels: int) -> SourceImage:
    """Load an image as 8-bit RGB and apply ``protocol`` (the path stays for sidecar describers)."""
    source = load_image(path, max_pixels)
    if protocol == "crop768":
        source = SourceImage(crop768(source.image), path, source.text_metadata, [*source.notes, "resized and center-cropped to 768x768"])
    return source
