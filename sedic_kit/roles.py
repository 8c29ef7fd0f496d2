"""Typed interfaces of the six plugin roles.

A plugin is a class with a ``name`` (its id in profiles and ``.sedic`` files), an ``Options``
pydantic model (its profile keys), given as the role's type parameter
(``class Upsample(Restorer[UpsampleOptions])``, so ``self.options`` is typed), and the role's
method(s). Decoder-side plugins (reference
codec, text and mask coders, restorer) also declare ``version`` (bumped whenever their bitstream
or output changes) and ``decode_params`` (option names the decoder must know; their non-default
values are stored in the file header).
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from .errors import ProfileError, SedicError
from .install import install_hint
from .models import ModelSpec
from .payload import Payload, SourceImage


class Role(str, Enum):
    """Profile sections; the text and mask coders are both entropy coders."""

    describer = "describer"
    grounder = "grounder"
    segmenter = "segmenter"
    reference_codec = "reference_codec"
    text_coder = "text_coder"
    mask_coder = "mask_coder"
    restorer = "restorer"


DECODER_ROLES: tuple[Role, ...] = (Role.reference_codec, Role.text_coder, Role.mask_coder, Role.restorer)
"""Roles whose plugin id, version and decode parameters are recorded in every ``.sedic`` header."""
ENCODER_ROLES: tuple[Role, ...] = (Role.describer, Role.grounder, Role.segmenter)
"""Roles only the encoder runs (its semantic half): ``run`` releases them before it decodes."""


class Options(BaseModel):
    """Base for plugin options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


BaseOptions = Options
OptionsT = TypeVar("OptionsT", bound=Options)


class Plugin(ABC, Generic[OptionsT]):
    """Common base of every role, generic over the plugin's options model."""

    name: ClassVar[str]
    role: ClassVar[Role]
    version: ClassVar[int] = 1
    Options: ClassVar[type[BaseOptions]] = BaseOptions
    """The options model: the class's type parameter (or, as before, assigned here)."""
    options: OptionsT
    decode_params: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    """Importable module names this plugin needs beyond the core."""
    extra: ClassVar[str | None] = None
    """The ``sedic-kit[extra]`` that installs ``requires``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Options" in cls.__dict__:
            return
        for base in getattr(cls, "__orig_bases__", ()):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, BaseOptions):
                    cls.Options = arg

    def __init__(self, options: OptionsT | None = None, **kwargs: Any) -> None:
        chosen = options if options is not None else self.Options(**kwargs)
        if not isinstance(chosen, self.Options):
            raise TypeError(f"{type(self).__name__} takes {self.Options.__name__}, not {type(chosen).__name__}")
        self.options = cast(OptionsT, chosen)

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """Modules in ``requires`` that cannot be imported here."""
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    @classmethod
    def import_problem(cls) -> str | None:
        """Why this plugin cannot run here, in one line (``None``: its libraries import).

        Missing modules are named without importing anything; present ones are imported, since a
        library that is installed can still fail to load (a torchvision built for another torch).
        """
        missing = cls.missing_requirements()
        if missing:
            return f"needs {', '.join(missing)}"
        for module in cls.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:
                return f"import {module} fails: {one_line(exc)}"
        return None

    @classmethod
    def check_available(cls) -> None:
        """Raise a one-line error naming what to install when ``requires`` are missing."""
        missing = cls.missing_requirements()
        if missing:
            hint = install_hint(cls.extra) if cls.extra else f"pip install {' '.join(missing)}"
            raise SedicError(
                f"{cls.role.value} '{cls.name}' needs {', '.join(missing)} which is not installed: {hint}"
            )

    def required_models(self) -> list[ModelSpec]:
        """Weights this plugin loads, for ``sedic-kit models check/pull`` (none by default)."""
        return []

    def release(self) -> None:
        """Free what this plugin loaded (models, engines, their GPU memory); it stays usable and
        loads them again when next called. Plugins that load nothing keep this default."""

    def decode_config(self) -> dict[str, Any]:
        """Non-default values of ``decode_params``: what the header must carry."""
        defaults = self.Options()
        return {
            k: getattr(self.options, k)
            for k in self.decode_params
            if getattr(self.options, k) != getattr(defaults, k)
        }


def free_memory() -> None:
    """Collect the garbage a plugin's dropped models leave, then hand the CUDA cache back to the
    driver (when torch has initialised CUDA): what ``release()`` does after dropping its models."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Describer(Plugin[OptionsT]):
    """Image -> caption and objects (name, details, optional box)."""

    role = Role.describer

    @abstractmethod
    def describe(self, source: SourceImage) -> Payload:
        """Return a payload with ``caption`` and ``objects`` filled in."""


class Grounder(Plugin[OptionsT]):
    """Verifies objects in the image: sets boxes/scores and drops hallucinations."""

    role = Role.grounder

    @abstractmethod
    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        """Return the payload keeping only objects found in the image, with their best box."""


class Segmenter(Plugin[OptionsT]):
    """Objects with boxes -> full-size boolean masks."""

    role = Role.segmenter

    @abstractmethod
    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        """Return the payload with ``mask`` (bool, H x W) set on every object."""


class ReferenceCodec(Plugin[OptionsT]):
    """Codes the extremely compressed reference image."""

    role = Role.reference_codec

    @abstractmethod
    def encode(self, image: Image.Image) -> bytes:
        """Compress an RGB image into the reference section."""

    @abstractmethod
    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        """Decode the reference section of an image of ``width`` x ``height``.

        May return a smaller image (coded at reduced resolution); the restorer brings it to size.
        """

    def decode_work(self, data: bytes, width: int, height: int) -> int:
        """What :meth:`decode` of ``data`` will cost, in pixel-equivalents (decoding one plain pixel
        costs 1), from the sizes the header and the section declare: checked against the
        decoder's budget before any decoding. Default: one plane of the image's size (a reference
        is never larger). A codec whose cost grows faster (a network per latent element, an
        autoregressive context model) says so; a declared size that cannot be right raises
        :class:`~sedic_kit.errors.FormatError`.
        """
        return width * height

    def rate_ladder(self) -> list[dict[str, Any]]:
        """Option overrides from lowest to highest rate, searched by ``target_bpp`` (none: no rate control)."""
        return []

    def search_options(self) -> dict[str, Any]:
        """Option overrides for the fast probes of a ``target_bpp`` search (none: probe at the real setting).

        The probes only rank the ladder; the file is always coded at the profile's own setting.
        """
        return {}


class EntropyCoder(Plugin[OptionsT]):
    """Lossless coder of one side-information section (text or masks)."""


class TextCoder(EntropyCoder[OptionsT]):
    """Codes the caption and the objects' names and details."""

    role = Role.text_coder

    @abstractmethod
    def encode(self, texts: list[str]) -> bytes:
        """Code a list of strings (``Payload.texts()`` order) losslessly."""

    @abstractmethod
    def decode(self, data: bytes) -> list[str]:
        """Inverse of :meth:`encode`."""


class MaskCoder(EntropyCoder[OptionsT]):
    """Codes the objects' masks, possibly at reduced resolution.

    The codec codes the reference first and always passes it as ``reference``, exactly as the
    decoder sees it (decoded, at coded resolution); a coder may condition on it or ignore it.
    ``None`` only outside the codec (a coder used on its own).
    """

    role = Role.mask_coder

    @abstractmethod
    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        """Code full-size boolean masks of an image of ``width`` x ``height``."""

    @abstractmethod
    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        """Return ``count`` boolean masks at the coder's resolution (``reference`` as at encode)."""

    def decode_work(self, data: bytes, count: int, width: int, height: int) -> int:
        """What :meth:`decode` will cost, in pixel-equivalents (see :meth:`ReferenceCodec.decode_work`).
        Default: one plane of the image's size (every mask plane is at most that)."""
        return width * height


class Restorer(Plugin[OptionsT]):
    """Reference image + semantics -> reconstruction."""

    role = Role.restorer

    @abstractmethod
    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        """Return an RGB image of ``payload.width`` x ``payload.height``."""

    def decode_work(self, width: int, height: int, objects: int) -> int:
        """What :meth:`restore` will cost for ``objects`` objects, in pixel-equivalents (see
        :meth:`ReferenceCodec.decode_work`). Default: one plane of the image's size."""
        return width * height


PluginT = TypeVar("PluginT", bound=Plugin[Any])


def as_role(plugin: Plugin[Any] | None, base: type[PluginT]) -> PluginT:
    """``plugin`` typed as ``base`` (a role's base class); a one-line error when it is not one."""
    if not isinstance(plugin, base):
        got = "no plugin" if plugin is None else type(plugin).__name__
        raise ProfileError(f"{base.role.value}: expected a {base.__name__}, got {got}")
    return plugin


@dataclass(frozen=True)
class Plugins(Mapping[Role, "Plugin[Any]"]):
    """The plugin chosen for every role, typed: what a codec is made of (also a role -> plugin mapping)."""

    describer: Describer[Any]
    grounder: Grounder[Any]
    segmenter: Segmenter[Any]
    reference_codec: ReferenceCodec[Any]
    text_coder: TextCoder[Any]
    mask_coder: MaskCoder[Any]
    restorer: Restorer[Any]

    @classmethod
    def from_roles(cls, plugins: Mapping[Role, Plugin[Any]]) -> Plugins:
        """From a role -> plugin mapping (``Profile.build``); one-line errors for gaps and misfits."""
        missing = [r.value for r in Role if r not in plugins]
        if missing:
            raise ProfileError(f"codec needs a plugin for: {', '.join(missing)}")
        return cls(
            describer=as_role(plugins[Role.describer], Describer),
            grounder=as_role(plugins[Role.grounder], Grounder),
            segmenter=as_role(plugins[Role.segmenter], Segmenter),
            reference_codec=as_role(plugins[Role.reference_codec], ReferenceCodec),
            text_coder=as_role(plugins[Role.text_coder], TextCoder),
            mask_coder=as_role(plugins[Role.mask_coder], MaskCoder),
            restorer=as_role(plugins[Role.restorer], Restorer),
        )

    def __getitem__(self, role: Role) -> Plugin[Any]:
        plugin: Plugin[Any] = getattr(self, role.value)
        return plugin

    def __iter__(self) -> Iterator[Role]:
        return iter(Role)

    def __len__(self) -> int:
        return len(Role)


ROLE_BASES: dict[Role, type[Plugin[Any]]] = {
    Role.describer: Describer,
    Role.grounder: Grounder,
    Role.segmenter: Segmenter,
    Role.reference_codec: ReferenceCodec,
    Role.text_coder: TextCoder,
    Role.mask_coder: MaskCoder,
    Role.restorer: Restorer,
}

__all__ = [
    "DECODER_ROLES",
    "ENCODER_ROLES",
    "ROLE_BASES",
    "as_role",
    "Describer",
    "EntropyCoder",
    "Grounder",
    "MaskCoder",
    "Options",
    "Plugin",
    "Plugins",
    "ReferenceCodec",
    "Restorer",
    "Role",
    "Segmenter",
    "TextCoder",
    "free_memory",
]
