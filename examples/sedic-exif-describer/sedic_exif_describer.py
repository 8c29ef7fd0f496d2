"""Example sedic-kit plugin: the caption is the image's own EXIF ImageDescription.

Cameras and photo managers store a description in EXIF tag 270 (ImageDescription); PNG files
may carry one in a ``Description`` text chunk. No objects are produced, so the decoder restores
the whole image from the caption alone.
"""

from PIL import Image
from pydantic import Field

from sedic_kit import Describer, Options, Payload, Register, SourceImage, hookimpl, truncate_words

IMAGE_DESCRIPTION = 270  # EXIF tag


class ExifOptions(Options):
    caption_words: int = Field(50, ge=0, le=50, description="l_all: keep at most this many words")
    fallback: str = Field("", description="caption used when the image has no description")


class ExifDescriber(Describer[ExifOptions]):
    """Caption from EXIF ImageDescription or a PNG ``Description`` chunk."""

    name = "exif"

    def describe(self, source: SourceImage) -> Payload:
        caption = source.text_metadata.get("Description", "")
        if not caption and source.path is not None:
            with Image.open(source.path) as im:
                caption = str(im.getexif().get(IMAGE_DESCRIPTION, ""))
        caption = truncate_words(caption.strip() or self.options.fallback, self.options.caption_words)
        return Payload(*source.size, caption=caption)


@hookimpl
def register_describers(register: Register) -> None:
    register(ExifDescriber)
