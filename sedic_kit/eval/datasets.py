"""The evaluation image sets: where each comes from, how it is checked and the paper's protocol.

Every set is defined once, in :data:`SETS`: its published files (URL, size and SHA-256 with the
list that publishes them), the images each file holds, the protocol (``as-is`` or the paper's
``crop768``) and the key of the paper's numbers it is compared with. ``sedic-kit data pull``
fetches a set into ``ROOT/NAME/`` with a manifest; evaluation takes the protocol from that
manifest (:func:`resolve`), never from a directory's name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

from ..download import Remote
from ..errors import InputError, SedicError
from ..imaging import load_image
from ..models import cache_root
from ..payload import SourceImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm"}
Protocol = Literal["as-is", "crop768"]
"""``as-is``: Kodak; ``crop768``: DIV2K/CLIC (resize to min side 768, center crop 768x768)."""
PROTOCOLS: tuple[Protocol, ...] = ("as-is", "crop768")
MANIFEST = "manifest.json"
ORIGINAL = "original"
"""Subdirectory of a pulled set with the images as published; ``crop768/`` holds the cropped ones."""


@dataclass(frozen=True)
class Part:
    """One published file of a set: a single image or a zip archive of ``images`` images."""

    remote: Remote
    images: int = 1
    archive: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation set, as published."""

    name: str
    title: str
    protocol: Protocol
    parts: tuple[Part, ...]
    paper_set: str | None = None
    """Key of the SEDIC paper's quoted numbers (Tables I, II, VIII) for this set."""
    pixel_sha256: dict[str, str] = field(default_factory=dict)
    """Expected :func:`pixel_sha256` per image name, where known (else the manifest's, from a verified archive)."""
    pixel_source: str = ""
    """Where :attr:`pixel_sha256` comes from."""

    @property
    def images(self) -> int:
        return sum(p.images for p in self.parts)

    @property
    def download_size(self) -> int | None:
        sizes = [p.remote.size for p in self.parts]
        return None if None in sizes else sum(s for s in sizes if s is not None)


TFDS_DIV2K = "https://github.com/tensorflow/datasets/blob/master/tensorflow_datasets/url_checksums/div2k.txt"
TFDS_CLIC = "https://github.com/tensorflow/datasets/blob/master/tensorflow_datasets/url_checksums/clic.txt"
KODAK_URL = "http://r0k.us/graphics/kodak/kodak/kodim{:02d}.png"
KODAK_PIXELS_SOURCE = (
    "computed from the Kodak PNGs shipped to sedic-kit's developers (../shared/data/kodak); r0k.us publishes no checksums, "
    "and whether its copies (not byte-identical to these files) decode to the same pixels has not been checked yet"
)
KODAK_PIXELS = {
    "kodim01.png": "971faf78865a68afe1ec69e9346ff25699107f11b2915da9bd1364a43a11fb4e",
    "kodim02.png": "03f24c91ddc11162693311d7929573fed737539d641586d0e51217933e293c7c",
    "kodim03.png": "a475f0d07b74f45e2b42090586149105c9de8716cc4bd5949ebd0aa2bfdb6540",
    "kodim04.png": "a01c5c6fcc78e1bfbd538851dd5940b7e8c3acb5bf2b7b9d3d9ab9ebe0c91a25",
    "kodim05.png": "3b34d1a99328cfd416617ec497fa7045146aa9a9f2bde0c48094154beb712d31",
    "kodim06.png": "72fc69709e475b52425103aabd9f616e9237308c32cef44de29e767dc02666ba",
    "kodim07.png": "6c3374a67db3070369e77a8267435b4e6a1f5d53094ef47ceaa1160554e4b156",
    "kodim08.png": "0fa94c58dc897263ae0d0f452afad0223f8bedbbee28aa51763e17ec6d4e4f7a",
    "kodim09.png": "f9989a8056e2067f5a8c47606c14ff8c2af2667b5aec6007b1c1115396ec37bc",
    "kodim10.png": "29bf437f78788a4c2f264e840cbe6ca0d1a2fcb3b198c090f363b513b4d5665c",
    "kodim11.png": "d9215d85c57d74c02a44327afcaaa5b82e918bfb3f1e2ce6dad83119bc7f2026",
    "kodim12.png": "e1743e487bfea35e6049aa34d757ee2798aa952322e1c40b2258fdfc61878730",
    "kodim13.png": "c6b887e1c41ce61808da64bd84d67b684f5807670a778705f21b403d3f44f7ce",
    "kodim14.png": "967bdc5b648a8a4cb6622be0cd78cb1b62a9f6418d3802232af07d10b19469bc",
    "kodim15.png": "e672aae9be975ccde752a239ef7602df14cebfdf89535540a3c906c1a7bd17b2",
    "kodim16.png": "222917ebb1f94fa52621d0ed5445b628271899eac7c84e145907288d8587e20f",
    "kodim17.png": "ce6ec4937d36c946c5634d223be578acf974e14d7f32901a9d3ec4fc34c2b2e4",
    "kodim18.png": "2b89789acb3f86edf320ff9405b02f4773aa693fc7da05a7515edf778ac8736e",
    "kodim19.png": "fbb13f7312170389b08fa55ca2ef92824223e5c0d397ad8311db7beb2ffe6f55",
    "kodim20.png": "15efee1bf3afd70324ce7c9227baf92d53699f6a68bbac71d7264a8c3ae373f1",
    "kodim21.png": "5c4ca070ecf42493be4132c04b871cd5c1b8b8520930aeb1f7896de38ccb9020",
    "kodim22.png": "117b4e812946eeb8ca5fcd3a5e9ab996a0db889665cb6759b75b47c0768032b8",
    "kodim23.png": "4fe9aa0f46deddf005faafaef4b7558a1b80ec3653c153019414573f2f5f1c0f",
    "kodim24.png": "964728fb161c5182cb6388e7c26b96b91ea1f5c8a87617c4b1ec30c4c67c166a",
}

SETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "kodak", "Kodak PhotoCD (24 images, 768x512)", "as-is",
            tuple(Part(Remote(KODAK_URL.format(i))) for i in range(1, 25)),
            paper_set="kodak", pixel_sha256=KODAK_PIXELS, pixel_source=KODAK_PIXELS_SOURCE,
        ),
        DatasetSpec(
            "div2k", "DIV2K validation HR (100 images)", "crop768",
            (Part(Remote(
                "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip", 448993893,
                "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", TFDS_DIV2K,
            ), 100, archive=True),),
            paper_set="div2k",
        ),
        DatasetSpec(
            "clic2020", "CLIC 2020 test (professional 250 + mobile 178)", "crop768",
            (
                Part(Remote(
                    "https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Professional_test.zip", 891643809,
                    "857df244fc2bfa5da28d4c66bf0db16ee99bfc79eb807be8afa89cd507852884", TFDS_CLIC,
                ), 250, archive=True),
                Part(Remote(
                    "https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Mobile_test.zip", 721789976,
                    "2025f07a6c652270e534640de4271feef3b3dd3260beed4ac4821064837aa732", TFDS_CLIC,
                ), 178, archive=True),
            ),
            paper_set="clic2020",
        ),
    )
}
PAPER_SET_SIZES = {spec.paper_set: spec.images for spec in SETS.values() if spec.paper_set}
"""Images in each of the paper's test sets (Section IV, "Test Data")."""


def data_root() -> Path:
    """Where ``sedic-kit data pull`` puts sets by default: ``$SEDIC_DATA``, else ``$SEDIC_CACHE/data``."""
    env = os.environ.get("SEDIC_DATA")
    return Path(env).expanduser() if env else cache_root() / "data"


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 of ``WxH\\n`` followed by the image's 8-bit RGB pixels, row by row."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return hashlib.sha256(f"{rgb.width}x{rgb.height}\n".encode() + rgb.tobytes()).hexdigest()


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


def prepare(path: Path, protocol: Protocol, max_pixels: int) -> SourceImage:
    """Load an image as 8-bit RGB and apply ``protocol`` (the path stays for sidecar describers).
    An image already cropped (a pulled set's ``crop768/`` cache) is left as it is."""
    source = load_image(path, max_pixels)
    if protocol == "crop768" and source.size != (768, 768):
        source = SourceImage(crop768(source.image), path, source.text_metadata, [*source.notes, "resized and center-cropped to 768x768"])
    return source


def spec_named(name: str) -> DatasetSpec:
    """The set called ``name``; one clear error naming the known ones otherwise."""
    try:
        return SETS[name]
    except KeyError:
        raise SedicError(f"unknown data set {name!r}; known: {', '.join(SETS)}") from None
