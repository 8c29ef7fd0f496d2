"""The library API: ``Codec.from_profile(...).encode(image)`` / ``.decode(data)``."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, TypeVar

import numpy as np
from PIL import Image

from .container import PluginRef, SedicFile, unpack
from .describe import MAX_OBJECTS, text_limit_problem
from .errors import FormatError, PluginError, ProfileError, SedicError, shown
from .assembly import FileAssembly
from .files import write_atomic
from .imaging import DEFAULT_MAX_PIXELS, load_image
from .payload import Payload, SourceImage
from .plugins import Registry, get_registry
from .plugin_options import instantiate
from .profiles import Profile, apply_override, load_profile
from .rate import RatePolicy, SemanticBudget, fit_reference, trim
from .stages import timed
from .roles import (
    Describer,
    Grounder,
    MaskCoder,
    Plugin,
    PluginT,
    Plugins,
    ReferenceCodec,
    Restorer,
    Role,
    Segmenter,
    TextCoder,
    as_role,
)


T = TypeVar("T")

DEFAULT_DECODE_PIXELS = 4096 * 4096
"""The decoder's default budget: a file may declare an image of at most this many pixels, and no
decoding stage (reference, masks, restoration) may cost more than decoding this many plain pixels."""


@dataclass
class EncodeResult:
    """A coded image: the file bytes, what went into them and how many bits each part took."""

    data: bytes
    payload: Payload
    bits: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Everything worth knowing about how the image was coded (warnings included)."""
    warnings: list[str] = field(default_factory=list)
    """The notes a user should see: input conversions, a missing description, dropped objects."""

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


class Codec:
    """A SEDIC codec assembled from one plugin per role."""

    def __init__(
        self,
        plugins: Plugins | Mapping[Role, Plugin[Any]],
        profile: Profile | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        registry: Registry | None = None,
        max_decode_pixels: int = DEFAULT_DECODE_PIXELS,
    ) -> None:
        """``max_pixels`` bounds the images encoded, ``max_decode_pixels`` the decoder's budget (see
        :meth:`decode_detailed`); ``registry`` resolves the decoder plugins a file names (default:
        the installed plugins)."""
        self.plugins = plugins if isinstance(plugins, Plugins) else Plugins.from_roles(plugins)
        self.profile = profile
        self.max_pixels = max_pixels
        self.max_decode_pixels = max_decode_pixels
        self.registry = registry if registry is not None else get_registry()
        self._decoders: dict[tuple[Role, str, str], Plugin[Any]] = {}

    @classmethod
    def from_profile(
        cls,
        profile: str | Path | Profile = "lite",
        *,
        overrides: Sequence[str] = (),
        max_pixels: int = DEFAULT_MAX_PIXELS,
        registry: Registry | None = None,
        max_decode_pixels: int = DEFAULT_DECODE_PIXELS,
        **role_options: Mapping[str, Any],
    ) -> Codec:
        """Build from a profile name, path or object.

        ``overrides`` are ``"role.key=value"`` strings; keyword arguments are per-role option
        dicts, e.g. ``Codec.from_profile("lite", reference_codec={"quality": 10})``. Plugins come
        from ``registry`` (default: the installed plugins), for encoding and decoding alike.
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
        registry = registry if registry is not None else get_registry()
        return cls(prof.build(registry), prof, max_pixels, registry, max_decode_pixels)

    def release(self, *roles: Role | str) -> None:
        """Free the models that the plugins of ``roles`` loaded (every role's when none is given).

        ``codec.release(*ENCODER_ROLES)`` (describer, grounder, segmenter) between encoding a batch
        and decoding it is what ``sedic-kit run`` does. The plugins stay usable: one called again
        loads its model again.
        """
        try:
            chosen = [Role(r) for r in roles] if roles else list(Role)
        except ValueError as exc:
            raise ProfileError(f"{exc} (roles: {', '.join(r.value for r in Role)})") from None
        for role in chosen:
            self.plugins[role].release()
        for (role, _, _), plugin in self._decoders.items():
            if role in chosen:
                plugin.release()

    # -- the chosen plugins, typed --------------------------------------------------------
    @property
    def describer(self) -> Describer[Any]:
        return self.plugins.describer

    @property
    def grounder(self) -> Grounder[Any]:
        return self.plugins.grounder

    @property
    def segmenter(self) -> Segmenter[Any]:
        return self.plugins.segmenter

    @property
    def reference_codec(self) -> ReferenceCodec[Any]:
        return self.plugins.reference_codec

    @property
    def text_coder(self) -> TextCoder[Any]:
        return self.plugins.text_coder

    @property
    def mask_coder(self) -> MaskCoder[Any]:
        return self.plugins.mask_coder

    @property
    def restorer(self) -> Restorer[Any]:
        return self.plugins.restorer

    # -- encoding --------------------------------------------------------------------------
    def load(self, image: ImageInput) -> SourceImage:
        """Open and normalise an input image (limits and conversions of this codec).

        ``image`` is a PIL image, a path, encoded bytes or a numpy array (H x W or H x W x 3/4,
        uint8 or uint16; floats in [0, 1]).
        """
        return load_image(image, self.max_pixels)

    def analyze(
        self,
        source: SourceImage,
        timings: dict[str, float] | None = None,
        description: str | Payload | None = None,
        budget: SemanticBudget | None = None,
        notes: list[str] | None = None,
    ) -> Payload:
        """Run describer, grounder and segmenter: the semantic half of the encoder.

        ``description`` (a caption, or a payload with caption and objects) replaces the describer.
        With a ``budget`` (rate control), the description is limited to its J, l_d and l_all
        after grounding and before segmentation: trimmed from the describer's answer, or asked
        afresh with those limits when the profile sets ``rate.redescribe``; what was kept is
        appended to ``notes``.
        """
        timings = timings if timings is not None else {}
        w, h = source.size
        policy = self.rate_policy
        redescribe = budget is not None and policy.redescribe and description is None
        with self.describer_with(budget if redescribe else None) as describer, timed(timings, "describe"):
            payload = self.describe(source, description, describer)
        with timed(timings, "ground"):
            payload = self.grounder.ground(source, payload)
        if budget is not None:
            payload, kept = trim(payload, budget)
            how = "asked afresh" if policy.redescribe and description is None else "trimmed"
            (notes if notes is not None else []).append(f"semantics {budget.describe()} ({how}): {kept}")
        with timed(timings, "segment"):
            payload = self.segmenter.segment(source, payload)
        self.check_semantics(payload, w, h)
        return payload

    def describe(
        self, source: SourceImage, description: str | Payload | None = None, describer: Describer | None = None
    ) -> Payload:
        """The describer's payload (or ``description``), with at most ``max_objects`` objects.

        ``describer``: ask this one instead of the profile's (rate control with ``rate.redescribe``).
        """
        w, h = source.size
        notes_before = len(source.notes)
        if isinstance(description, Payload):
            payload, who = replace(description, objects=list(description.objects)), "description="
        elif isinstance(description, str):
            payload, who = Payload(w, h, description), "description="
        else:
            describer = describer or self.describer
            payload, who = describer.describe(source), f"describer '{describer.name}'"
            if not payload.caption and not payload.objects and describer.name != "none" and len(source.notes) == notes_before:
                hint = " (pass description= with an in-memory image)" if source.path is None else ""
                source.notes.append(f"no description: {who} found none; coded without caption or objects{hint}")
        return self.limit_objects(payload, source, who)

    def limit_objects(self, payload: Payload, source: SourceImage, who: str) -> Payload:
        """Keep the first ``max_objects`` objects (the describer's option, else the paper's J = 3)."""
        limit = getattr(self.describer.options, "max_objects", MAX_OBJECTS)
        if len(payload.objects) <= limit:
            return payload
        source.notes.append(f"{who} gave {len(payload.objects)} objects; kept the first {limit} (max_objects)")
        return payload.with_objects(payload.objects[:limit])

    def check_semantics(self, payload: Payload, w: int, h: int) -> None:
        """The payload fits the image and every object has a full-size mask."""
        if (payload.width, payload.height) != (w, h):
            raise PluginError(f"payload size {payload.width}x{payload.height} does not match the image {w}x{h}")
        for obj in payload.objects:
            if obj.mask is None or obj.mask.shape != (h, w):
                shape = None if obj.mask is None else obj.mask.shape
                raise PluginError(f"segmenter '{self.segmenter.name}' gave object '{obj.name}' mask {shape}, expected {(h, w)}")

    @property
    def rate_policy(self) -> RatePolicy:
        """The profile's ``[rate]`` policy (the paper's operating points without a profile)."""
        return self.profile.rate_policy() if self.profile is not None else RatePolicy()

    @contextmanager
    def describer_with(self, budget: SemanticBudget | None) -> Iterator[Describer]:
        """This codec's describer, asking for ``budget``'s limits while in use (no budget: as it is).

        The same instance with its options swapped for the call, not a copy: a model it has loaded,
        or loads now, stays with it for the next image, and ``release()`` reaches it.
        """
        own = self.describer
        if budget is None:
            yield own
            return
        fields = type(own.options).model_fields
        if not all(k in fields for k in budget.limits()):
            raise ProfileError(
                f"rate.redescribe: describer '{own.name}' has no max_objects/detail_words/caption_words options to ask with"
            )
        saved = own.options
        own.options = type(saved).model_validate({**saved.model_dump(), **budget.limits()})
        try:
            yield own
        finally:
            own.options = saved

    def encode(
        self,
        image: ImageInput | SourceImage,
        target_bpp: float | None = None,
        *,
        description: str | Payload | None = None,
        payload: Payload | None = None,
    ) -> EncodeResult:
        """Encode an image (PIL image, path, encoded bytes or numpy array) into a ``.sedic`` file.

        With ``target_bpp``, the profile's rate policy first sets J, l_d and l_all (the paper's
        knobs; a longer description is trimmed), then the reference codec's setting is searched
        (after text and masks are coded) so the whole file lands at or just under that many bits
        per pixel. ``description`` (a caption, or a :class:`Payload` with caption and objects, boxes optional)
        replaces the describer; grounding and segmentation still run. ``payload`` gives the whole
        semantics (objects with full-size masks): describer, grounder and segmenter are skipped.
        """
        if description is not None and payload is not None:
            raise SedicError("give description= or payload=, not both")
        timings: dict[str, float] = {}
        source = image if isinstance(image, SourceImage) else self.load(image)
        w, h = source.size
        # Rate decisions, all made here: J, l_d and l_all for the semantics, the file's bits for the reference.
        budget = None if target_bpp is None else self.rate_policy.choose(target_bpp)
        file_bits = None if target_bpp is None else math.floor(target_bpp * w * h)
        semantic_notes: list[str] = []
        sem = self.semantics(source, description, payload, budget, timings, semantic_notes)
        problem = text_limit_problem(sem.texts())
        if problem:
            raise PluginError(f"the description breaks the format's text limits ({problem})")
        assembly = FileAssembly.start(source, sem, self.text_coder, self.mask_coder, self.plugins, timings)
        warnings = list(source.notes)
        notes = [*warnings, *semantic_notes]
        if file_bits is None:
            data, bits = assembly.build(self.reference_codec)
            return EncodeResult(data, sem, bits, timings, notes, warnings)
        choice = fit_reference(self.reference_codec, file_bits, assembly.build, assembly.probe)
        sem.reference = unpack(choice.data).reference
        setting = ", ".join(f"{k}={v}" for k, v in choice.setting.items())
        verdict = "" if choice.fits else " (the lowest setting; the target is out of reach)"
        notes.append(f"target {target_bpp} bpp: reference {setting}{verdict}, {choice.tried} coded + {choice.probes} fast probes")
        if not choice.fits:
            warnings.append(f"target {target_bpp} bpp is out of reach: coded at the lowest reference setting")
        return EncodeResult(choice.data, sem, choice.bits, timings, notes, warnings)

    def semantics(
        self,
        source: SourceImage,
        description: str | Payload | None,
        payload: Payload | None,
        budget: SemanticBudget | None,
        timings: dict[str, float],
        notes: list[str],
    ) -> Payload:
        """The semantics to code: analysed here (:meth:`analyze`), or ``payload`` as given, limited
        to ``max_objects`` and to ``budget`` (what was kept is appended to ``notes``)."""
        if payload is None:
            return self.analyze(source, timings, description, budget, notes)
        sem = self.limit_objects(replace(payload, objects=list(payload.objects), extras=dict(payload.extras)), source, "payload=")
        if budget is not None:
            sem, kept = trim(sem, budget)
            notes.append(f"semantics {budget.describe()} (trimmed): {kept}")
        self.check_semantics(sem, *source.size)
        return sem

    # -- decoding --------------------------------------------------------------------------
    def decoder_plugin(self, base: type[PluginT], ref: PluginRef) -> PluginT:
        """The plugin of role ``base`` (e.g. ``TextCoder``) that decodes a file's section, as
        ``ref`` in its header names it: this codec's own when it matches."""
        role = base.role
        own = self.plugins[role]
        if own.name == ref.name and own.version == ref.version and own.decode_config() == ref.params:
            return as_role(own, base)
        key = (role, ref.name, repr(sorted(ref.params.items())))
        if key in self._decoders:
            return as_role(self._decoders[key], base)
        registry = self.registry
        try:
            cls = registry.get(role, ref.name)
        except ProfileError:
            available = ", ".join(registry.names(role)) or "none"
            raise FormatError(
                f"this file needs {role.value} '{shown(ref.name)}' v{ref.version}, which is not installed "
                f"(available: {available})"
            ) from None
        if cls.version != ref.version:
            raise FormatError(
                f"this file was written by {role.value} '{ref.name}' v{ref.version}; the installed plugin is v{cls.version}"
            )
        unknown = sorted(set(ref.params) - set(cls.decode_params))
        if unknown:
            names = ", ".join(shown(k, 40) for k in unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
            raise FormatError(f"this file sets unknown {role.value} '{ref.name}' parameters: {names}")
        cls.check_available()
        local: dict[str, Any] = {}
        if self.profile is not None and self.profile.roles[role].plugin == ref.name:
            local = {k: v for k, v in self.profile.roles[role].options.items() if k not in cls.decode_params}
        try:
            plugin = instantiate(cls, {**local, **ref.params}, where="file header")
        except ProfileError as exc:
            raise FormatError(f"corrupt .sedic file ({_one_line(str(exc))})") from None
        self._decoders[key] = plugin
        return as_role(plugin, base)

    def read(self, data: bytes | str | Path) -> SedicFile:
        """Parse and verify a ``.sedic`` file (bytes or path)."""
        if isinstance(data, (str, Path)):
            path = Path(data)
            if not path.is_file():
                raise SedicError(f"{path}: no such file")
            data = path.read_bytes()
        return unpack(bytes(data))

    def decode_detailed(self, data: bytes | str | Path) -> DecodeResult:
        """Decode and also return the payload, the reference image and timings.

        The budget (``max_decode_pixels``) is checked before any decoding: the header's image size
        first, then, once the (bounded) text section gives the object count, what each stage's
        plugin says its decode of the declared sizes costs (:meth:`ReferenceCodec.decode_work`
        and the like). Every plugin call is guarded, so whatever a crafted file makes a plugin
        raise (``MemoryError`` included) comes out as one :class:`FormatError` line naming the
        section and the plugin.
        """
        f = self.read(data)
        if f.width * f.height > self.max_decode_pixels:
            raise FormatError(
                f"the file is a {f.width}x{f.height} image ({f.width * f.height:,} pixels), above the decoder's "
                f"limit of {self.max_decode_pixels:,} ({self._raise_hint})"
            )
        timings: dict[str, float] = {}
        reference_codec = self.decoder_plugin(ReferenceCodec, f.plugins[Role.reference_codec])
        text_coder = self.decoder_plugin(TextCoder, f.plugins[Role.text_coder])
        mask_coder = self.decoder_plugin(MaskCoder, f.plugins[Role.mask_coder])
        restorer = self.decoder_plugin(Restorer, f.plugins[Role.restorer])
        with timed(timings, "text"):
            texts = _guarded(lambda: text_coder.decode(f.text), "decode the text section", text_coder)
            problem = text_limit_problem(texts) if isinstance(texts, list) else "not a list of strings"
            if problem:
                raise FormatError(f"corrupt text section ({problem})")
            try:
                caption, objects = Payload.split_texts(texts)
            except ValueError as exc:
                raise FormatError(f"corrupt text section ({exc})") from None
        if objects and not f.masks:
            raise FormatError(f"corrupt .sedic file (mask section is empty but there are {len(objects)} objects)")
        self.check_budget(
            ("the reference section", reference_codec, lambda: reference_codec.decode_work(f.reference, f.width, f.height)),
            ("the mask section", mask_coder, lambda: mask_coder.decode_work(f.masks, len(objects), f.width, f.height)),
            ("the restoration", restorer, lambda: restorer.decode_work(f.width, f.height, len(objects))),
        )
        with timed(timings, "reference"):
            reference = _guarded(
                lambda: reference_codec.decode(f.reference, f.width, f.height), "decode the reference section", reference_codec
            )
        with timed(timings, "masks"):
            masks = _guarded(
                lambda: mask_coder.decode(f.masks, len(objects), f.width, f.height, reference=reference),
                "decode the mask section",
                mask_coder,
            )
        if len(masks) != len(objects):
            raise FormatError(f"mask section holds {len(masks)} masks for {len(objects)} objects")
        for obj, mask in zip(objects, masks):
            obj.mask = np.asarray(mask, dtype=bool)
        payload = Payload(f.width, f.height, caption, objects, f.reference, dict(f.extras))
        with timed(timings, "restore"):
            image = _guarded(lambda: restorer.restore(reference, payload), "restore the image", restorer)
        if image.size != (f.width, f.height) or image.mode != "RGB":
            raise PluginError(
                f"restorer '{restorer.name}' returned {image.mode} {image.size[0]}x{image.size[1]}, "
                f"expected RGB {f.width}x{f.height}"
            )
        return DecodeResult(image, payload, reference, timings)

    def decode(self, data: bytes | str | Path) -> Image.Image:
        """Decode a ``.sedic`` file (bytes or path) to an RGB image of the original size."""
        return self.decode_detailed(data).image

    _raise_hint = "raise it with --max-pixels or Codec(max_decode_pixels=...)"

    def check_budget(self, *stages: tuple[str, Plugin[Any], Callable[[], int]]) -> None:
        """Refuse the file when a stage's declared work is above ``max_decode_pixels``."""
        for what, plugin, work in stages:
            cost = _guarded(work, f"decode {what}", plugin)
            if cost > self.max_decode_pixels:
                raise FormatError(
                    f"decoding {what} ({plugin.role.value} '{plugin.name}') costs {cost:,} pixel-equivalents, above "
                    f"the decoder's budget of {self.max_decode_pixels:,} ({self._raise_hint})"
                )


def _guarded(fn: Callable[[], T], what: str, plugin: Plugin) -> T:
    """Run one decoder-side plugin call on data from a file.

    A :class:`FormatError` gets the section and plugin added; any other exception but a
    :class:`SedicError` (a missing model, say), ``MemoryError`` included, becomes one.
    """
    where = f"cannot {what} ({plugin.role.value} '{plugin.name}')"
    try:
        return fn()
    except FormatError as exc:
        raise FormatError(f"{where}: {_one_line(str(exc))}") from None
    except SedicError:
        raise
    except Exception as exc:  # a plugin choking on bytes that passed the CRC
        detail = _one_line(str(exc))
        raise FormatError(f"{where}: {type(exc).__name__}{': ' + detail if detail else ''}") from None


def _one_line(text: str, limit: int = 300) -> str:
    return shown(" ".join(text.split()), limit)


ImageInput = Image.Image | str | Path | bytes | np.ndarray
"""What :meth:`Codec.encode` and :meth:`Codec.load` accept."""


def finite(value: float) -> float | None:
    """JSON-safe float (``None`` for inf/nan, e.g. PSNR of identical images)."""
    return value if math.isfinite(value) else None
