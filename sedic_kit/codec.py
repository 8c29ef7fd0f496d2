"""The library API: ``Codec.from_profile(...).encode(image)`` / ``.decode(data)``."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from .container import PluginRef, SedicFile, pack, unpack
from .errors import FormatError, PluginError, ProfileError, SedicError
from .imaging import DEFAULT_MAX_PIXELS, load_image
from .payload import Payload, SourceImage
from .plugins import get_registry
from .profiles import Profile, apply_override, instantiate, load_profile
from .rate import RatePolicy, SemanticBudget, fit_reference, trim
from .roles import (
    DECODER_ROLES,
    Describer,
    Grounder,
    MaskCoder,
    Plugin,
    ReferenceCodec,
    Restorer,
    Role,
    Segmenter,
    TextCoder,
)


@dataclass
class EncodeResult:
    """A coded image: the file bytes, what went into them and how many bits each part took."""

    data: bytes
    payload: Payload
    bits: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total_bits(self) -> int:
        return 8 * len(self.data)

    @property
    def bpp(self) -> float:
        return self.total_bits / self.payload.pixels

    @property
    def bpp_sections(self) -> dict[str, float]:
        return {k: v / self.payload.pixels for k, v in self.bits.items()}

    def save(self, path: str | Path) -> Path:
        """Write the ``.sedic`` file atomically."""
        return write_atomic(Path(path), self.data)

    def summary(self) -> dict[str, Any]:
        return {
            "width": self.payload.width,
            "height": self.payload.height,
            "bytes": len(self.data),
            "bits": dict(self.bits),
            "bpp": self.bpp,
            "bpp_sections": self.bpp_sections,
            "objects": [o.name for o in self.payload.objects],
            "timings": dict(self.timings),
            "notes": list(self.notes),
        }


@dataclass
class DecodeResult:
    """A decoded file: the reconstruction, the payload and the reference at coded resolution."""

    image: Image.Image
    payload: Payload
    reference: Image.Image
    timings: dict[str, float] = field(default_factory=dict)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and rename (no partial files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def save_png(image: Image.Image, path: Path) -> Path:
    """Write ``image`` as PNG via a temporary file and rename (no partial files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, "PNG")
    tmp.replace(path)
    return path


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


class Codec:
    """A SEDIC codec assembled from one plugin per role."""

    def __init__(
        self,
        plugins: Mapping[Role, Plugin],
        profile: Profile | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        missing = [r.value for r in Role if r not in plugins]
        if missing:
            raise ProfileError(f"codec needs a plugin for: {', '.join(missing)}")
        self.plugins = dict(plugins)
        self.profile = profile
        self.max_pixels = max_pixels
        self._decoders: dict[tuple[Role, str, str], Plugin] = {}

    @classmethod
    def from_profile(
        cls,
        profile: str | Path | Profile = "lite",
        *,
        overrides: Sequence[str] = (),
        max_pixels: int = DEFAULT_MAX_PIXELS,
        **role_options: Mapping[str, Any],
    ) -> Codec:
        """Build from a profile name, path or object.

        ``overrides`` are ``"role.key=value"`` strings; keyword arguments are per-role option
        dicts, e.g. ``Codec.from_profile("lite", reference_codec={"quality": 10})``.
        """
        if isinstance(profile, Profile):
            prof = copy.deepcopy(profile)
            for item in overrides:
                apply_override(prof, item)
        else:
            prof = load_profile(profile, list(overrides))
        for role_name, options in role_options.items():
            if not isinstance(options, Mapping):
                raise ProfileError(f"{role_name}: expected a dict of options, got {options!r}")
            for key, value in options.items():
                apply_override(prof, f"{role_name}.{key}", value)
        return cls(prof.build(), prof, max_pixels)

    # -- typed access to the chosen plugins ------------------------------------------------
    @property
    def describer(self) -> Describer:
        return self.plugins[Role.describer]  # type: ignore[return-value]

    @property
    def grounder(self) -> Grounder:
        return self.plugins[Role.grounder]  # type: ignore[return-value]

    @property
    def segmenter(self) -> Segmenter:
        return self.plugins[Role.segmenter]  # type: ignore[return-value]

    @property
    def reference_codec(self) -> ReferenceCodec:
        return self.plugins[Role.reference_codec]  # type: ignore[return-value]

    @property
    def text_coder(self) -> TextCoder:
        return self.plugins[Role.text_coder]  # type: ignore[return-value]

    @property
    def mask_coder(self) -> MaskCoder:
        return self.plugins[Role.mask_coder]  # type: ignore[return-value]

    @property
    def restorer(self) -> Restorer:
        return self.plugins[Role.restorer]  # type: ignore[return-value]

    # -- encoding --------------------------------------------------------------------------
    def load(self, image: Image.Image | str | Path | bytes) -> SourceImage:
        """Open and normalise an input image (limits and conversions of this codec)."""
        return load_image(image, self.max_pixels)

    def analyze(
        self, source: SourceImage, timings: dict[str, float] | None = None, budget: SemanticBudget | None = None
    ) -> Payload:
        """Run describer, grounder and segmenter: the semantic half of the encoder.

        With a ``budget`` (rate control), the description is limited to its J, l_d and l_all
        after grounding and before segmentation: trimmed from the describer's answer, or asked
        afresh with those limits when the profile sets ``rate.redescribe``.
        """
        timings = timings if timings is not None else {}
        w, h = source.size
        policy = self.rate_policy
        describer = self.describer if budget is None or not policy.redescribe else self.describer_with(budget)
        with _timed(timings, "describe"):
            payload = describer.describe(source)
        with _timed(timings, "ground"):
            payload = self.grounder.ground(source, payload)
        if budget is not None:
            payload, kept = trim(payload, budget)
            how = "asked afresh" if policy.redescribe else "trimmed"
            source.notes.append(f"semantics {budget.describe()} ({how}): {kept}")
        with _timed(timings, "segment"):
            payload = self.segmenter.segment(source, payload)
        if (payload.width, payload.height) != (w, h):
            raise PluginError(f"payload size {payload.width}x{payload.height} does not match the image {w}x{h}")
        for obj in payload.objects:
            if obj.mask is None or obj.mask.shape != (h, w):
                shape = None if obj.mask is None else obj.mask.shape
                raise PluginError(f"segmenter '{self.segmenter.name}' gave object '{obj.name}' mask {shape}, expected {(h, w)}")
        return payload

    @property
    def rate_policy(self) -> RatePolicy:
        """The profile's ``[rate]`` policy (the paper's operating points without a profile)."""
        return self.profile.rate_policy() if self.profile is not None else RatePolicy()

    def describer_with(self, budget: SemanticBudget) -> Describer:
        """This codec's describer asking for ``budget``'s limits (same instance state: a loaded model is shared)."""
        own = self.describer
        fields = type(own.options).model_fields
        if not all(k in fields for k in budget.limits()):
            raise ProfileError(
                f"rate.redescribe: describer '{own.name}' has no max_objects/detail_words/caption_words options to ask with"
            )
        fresh = copy.copy(own)
        fresh.options = type(own.options).model_validate({**own.options.model_dump(), **budget.limits()})
        return fresh

    def encode(
        self, image: Image.Image | str | Path | bytes | SourceImage, target_bpp: float | None = None
    ) -> EncodeResult:
        """Encode an image (PIL image, path or encoded bytes) into a ``.sedic`` file.

        With ``target_bpp``, the profile's rate policy first sets J, l_d and l_all (the paper's
        knobs), then the reference codec's setting is searched (after text and masks are coded)
        so the whole file lands at or just under that many bits per pixel.
        """
        timings: dict[str, float] = {}
        source = image if isinstance(image, SourceImage) else self.load(image)
        budget = None if target_bpp is None else self.rate_policy.choose(target_bpp)
        payload = self.analyze(source, timings, budget)
        w, h = source.size
        with _timed(timings, "text"):
            text = self.text_coder.encode(payload.texts())
        object_masks: list[np.ndarray] = [o.mask for o in payload.objects]  # type: ignore[misc]
        mask_coder = self.mask_coder
        masks = b""
        if not mask_coder.uses_reference:
            with _timed(timings, "masks"):
                masks = mask_coder.encode(object_masks, w, h)
        refs = {role: PluginRef(p.name, p.version, p.decode_config()) for role, p in self.plugins.items() if role in DECODER_ROLES}
        notes = list(source.notes)

        def build(codec: ReferenceCodec) -> tuple[bytes, dict[str, int]]:
            with _timed(timings, "reference"):
                payload.reference = codec.encode(source.image)
            refs[Role.reference_codec] = PluginRef(codec.name, codec.version, codec.decode_config())
            coded_masks = masks
            if mask_coder.uses_reference:  # conditioned on the reference as the decoder will see it
                with _timed(timings, "masks"):
                    decoded = codec.decode(payload.reference, w, h)
                    coded_masks = mask_coder.encode(object_masks, w, h, reference=decoded)
            return pack(SedicFile(w, h, refs, payload.reference, text, coded_masks, dict(payload.extras)))

        if target_bpp is None:
            data, bits = build(self.reference_codec)
        else:
            choice = fit_reference(self.reference_codec, math.floor(target_bpp * w * h), build, lambda c: c.encode(source.image))
            data, bits = choice.data, choice.bits
            payload.reference = unpack(data).reference
            setting = ", ".join(f"{k}={v}" for k, v in choice.setting.items())
            verdict = "" if choice.fits else " (the lowest setting; the target is out of reach)"
            notes.append(
                f"target {target_bpp} bpp: reference {setting}{verdict}, {choice.tried} coded + {choice.probes} fast probes"
            )
        return EncodeResult(data, payload, bits, timings, notes)

    # -- decoding --------------------------------------------------------------------------
    def decoder_plugin(self, role: Role, ref: PluginRef) -> Plugin:
        """The plugin that decodes a file's ``role`` section: this codec's own when it matches."""
        own = self.plugins[role]
        if own.name == ref.name and own.version == ref.version and own.decode_config() == ref.params:
            return own
        key = (role, ref.name, repr(sorted(ref.params.items())))
        if key in self._decoders:
            return self._decoders[key]
        registry = get_registry()
        try:
            cls = registry.get(role, ref.name)
        except ProfileError:
            available = ", ".join(registry.names(role)) or "none"
            raise FormatError(
                f"this file needs {role.value} '{ref.name}' v{ref.version}, which is not installed "
                f"(available: {available})"
            ) from None
        if cls.version != ref.version:
            raise FormatError(
                f"this file was written by {role.value} '{ref.name}' v{ref.version}; the installed plugin is v{cls.version}"
            )
        unknown = sorted(set(ref.params) - set(cls.decode_params))
        if unknown:
            raise FormatError(f"this file sets unknown {role.value} '{ref.name}' parameters: {', '.join(unknown)}")
        cls.check_available()
        local: dict[str, Any] = {}
        if self.profile is not None and self.profile.roles[role].plugin == ref.name:
            local = {k: v for k, v in self.profile.roles[role].options.items() if k not in cls.decode_params}
        try:
            plugin = instantiate(cls, {**local, **ref.params}, where="file header")
        except ProfileError as exc:
            raise FormatError(f"corrupt .sedic file ({exc})") from None
        self._decoders[key] = plugin
        return plugin

    def read(self, data: bytes | str | Path) -> SedicFile:
        """Parse and verify a ``.sedic`` file (bytes or path)."""
        if isinstance(data, (str, Path)):
            path = Path(data)
            if not path.is_file():
                raise SedicError(f"{path}: no such file")
            data = path.read_bytes()
        return unpack(bytes(data))

    def decode_detailed(self, data: bytes | str | Path) -> DecodeResult:
        """Decode and also return the payload, the reference image and timings."""
        f = self.read(data)
        timings: dict[str, float] = {}
        plugins = {role: self.decoder_plugin(role, f.plugins[role]) for role in DECODER_ROLES}
        text_coder: TextCoder = plugins[Role.text_coder]  # type: ignore[assignment]
        mask_coder: MaskCoder = plugins[Role.mask_coder]  # type: ignore[assignment]
        reference_codec: ReferenceCodec = plugins[Role.reference_codec]  # type: ignore[assignment]
        restorer: Restorer = plugins[Role.restorer]  # type: ignore[assignment]
        with _timed(timings, "text"):
            texts = _section(lambda: text_coder.decode(f.text), "text")
            try:
                caption, objects = Payload.split_texts(texts)
            except ValueError as exc:
                raise FormatError(f"corrupt text section ({exc})") from None
        with _timed(timings, "reference"):
            reference = _section(lambda: reference_codec.decode(f.reference, f.width, f.height), "reference")
        with _timed(timings, "masks"):
            if mask_coder.uses_reference:
                masks = _section(lambda: mask_coder.decode(f.masks, len(objects), f.width, f.height, reference=reference), "mask")
            else:
                masks = _section(lambda: mask_coder.decode(f.masks, len(objects), f.width, f.height), "mask")
        if len(masks) != len(objects):
            raise FormatError(f"mask section holds {len(masks)} masks for {len(objects)} objects")
        for obj, mask in zip(objects, masks):
            obj.mask = np.asarray(mask, dtype=bool)
        payload = Payload(f.width, f.height, caption, objects, f.reference, dict(f.extras))
        with _timed(timings, "restore"):
            image = restorer.restore(reference, payload)
        if image.size != (f.width, f.height) or image.mode != "RGB":
            raise PluginError(
                f"restorer '{restorer.name}' returned {image.mode} {image.size[0]}x{image.size[1]}, "
                f"expected RGB {f.width}x{f.height}"
            )
        return DecodeResult(image, payload, reference, timings)

    def decode(self, data: bytes | str | Path) -> Image.Image:
        """Decode a ``.sedic`` file (bytes or path) to an RGB image of the original size."""
        return self.decode_detailed(data).image


def _section(fn: Any, what: str) -> Any:
    """Run a section decoder; turn anything but a SedicError into a one-line FormatError."""
    try:
        return fn()
    except SedicError:
        raise
    except Exception as exc:  # a coder choking on bytes that passed the CRC
        raise FormatError(f"cannot decode the {what} section: {type(exc).__name__}: {exc}") from None


def finite(value: float) -> float | None:
    """JSON-safe float (``None`` for inf/nan, e.g. PSNR of identical images)."""
    return value if math.isfinite(value) else None
