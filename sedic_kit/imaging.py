"""Image input normalisation, resizing helpers and PSNR."""

from __future__ import annotations

import io
import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .payload import SourceImage

DEFAULT_MAX_PIXELS = 100_000_000


def load_image(src: Image.Image | str | Path | bytes | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> SourceImage:
    """Open and normalise an image to 8-bit RGB, applying EXIF orientation.

    16-bit and float images are scaled (not clipped) to 8 bits; alpha is composited over white
    (an alpha that is opaque everywhere is dropped); CMYK, palette and grayscale images are
    converted. Each conversion that changes pixels is noted in ``notes``. A numpy array is read as
    :func:`array_to_image` says.
    """
    path: Path | None = None
    notes: list[str] = []
    if isinstance(src, np.ndarray):
        image = array_to_image(src, notes)
    elif isinstance(src, Image.Image):
        image = src
    else:
        if isinstance(src, (str, Path)):
            path = Path(src)
            if not path.is_file():
                raise InputError(f"{path}: no such file")
            if path.stat().st_size == 0:
                raise InputError(f"{path}: empty file (0 bytes)")
            data = path.read_bytes()
        else:
            data = bytes(src)
            if not data:
                raise InputError("empty image data (0 bytes)")
        label = str(path) if path else "image data"
        _register_heif()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise InputError(f"{label}: image too large (limit {max_pixels / 1e6:.0f} megapixels)") from None
        except UnidentifiedImageError:
            raise InputError(f"{label}: not an image or an unsupported image format") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:  # e.g. a JPEG cut inside its header
            raise InputError(f"{label}: cannot read image ({exc})") from None
    label = str(path) if path else "image"
    w, h = image.size
    if w * h > max_pixels:
        raise InputError(
            f"{label}: {w}x{h} is {w * h / 1e6:.1f} megapixels, above the limit of {max_pixels / 1e6:.0f} "
            "(raise it with --max-pixels)"
        )
    if w < 1 or h < 1:
        raise InputError(f"{label}: empty image ({w}x{h})")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"{image.format or 'image'} with {frames} frames (animated or multi-page): coded frame 1 of {frames}")
        image.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            text = {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            rotated = ImageOps.exif_transpose(image) if orientation not in (0, 1) else image
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{label}: cannot decode image ({exc})") from None
    if rotated is not image:
        notes.append("applied EXIF orientation")
    return SourceImage(to_rgb8(rotated, notes), path, text, notes)


@lru_cache(maxsize=1)
def _register_heif() -> None:
    """Let Pillow open HEIC/HEIF inputs (pillow-heif is a core dependency)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def array_to_image(array: np.ndarray, notes: list[str] | None = None) -> Image.Image:
    """A numpy image (H x W, H x W x 1/3/4; uint8, uint16, bool, or floats in [0, 1]) as a PIL image.

    uint16 colour arrays are scaled to 8 bits as 16-bit image files are (noted in ``notes``);
    a 2-D uint16 array becomes an ``I;16`` image, which :func:`to_rgb8` scales the same way.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"numpy image of shape {a.shape}: expected H x W or H x W x 3 (or x 4 with alpha)")
    if a.dtype.kind == "f":
        if a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise InputError("float numpy image: expected finite values in [0, 1]")
        a = np.round(a * 255.0).astype(np.uint8)
    elif a.dtype == np.uint16 and a.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(a), "I;16")
    elif a.dtype == np.uint16:
        a = scale_16_bit(a)
        (notes if notes is not None else []).append("converted 16-bit colour to 8-bit")
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise InputError(f"numpy image of dtype {a.dtype}: expected uint8, uint16, bool or floats in [0, 1]")
    return Image.fromarray(np.ascontiguousarray(a), {2: "L", 3: "RGB", 4: "RGBA"}[a.shape[2] if a.ndim == 3 else 2])


def scale_16_bit(values: np.ndarray) -> np.ndarray:
    """16-bit samples as 8-bit ones: scaled by 255/65535 (rounded), unless none exceeds 255
    (an 8-bit image stored in 16 bits, kept as it is)."""
    scale = 255.0 / 65535.0 if values.size and values.max() > 255 else 1.0
    return np.clip(np.round(values.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def to_rgb8(image: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, recording what was done in ``notes``."""
    notes = notes if notes is not None else []
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image)
        notes.append(f"converted {mode} to 8-bit")
        if mode == "F":
            scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
            arr8 = np.clip(np.round(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)
        else:
            arr8 = scale_16_bit(arr)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema() == (255, 255):  # opaque everywhere: compositing changes nothing
            return rgba.convert("RGB")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("alpha composited over white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1"):
        notes.append("grayscale coded as RGB")
    elif mode != "P":
        notes.append(f"converted {mode} to RGB")
    return image.convert("RGB")


def upsample(image: Image.Image, width: int, height: int) -> Image.Image:
    """Lanczos resize to ``width`` x ``height`` (no-op when already that size)."""
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a boolean mask: area average when shrinking, bilinear when enlarging, then >= 0.5."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (height, width):
        return mask.copy()
    shrinking = height * width < mask.size
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    img = Image.fromarray(mask.astype(np.float32), "F").resize((width, height), resample)
    return np.asarray(img) >= 0.5


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """PSNR in dB of two 8-bit images over all channels (``inf`` when identical)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
