"""sedic-kit: pluggable SEDIC-style semantic image compression at extremely low bitrates."""

from .codec import Codec, DecodeResult, EncodeResult
from .describe import DescriptionOptions, apply_limits, truncate_words
from .errors import BackendError, FormatError, InputError, ModelNotFoundError, PluginError, ProfileError, SedicError
from .hookspecs import Register, hookimpl
from .model_files import resolve
from .models import ModelSpec, register_tiny
from .payload import Payload, SemanticObject, SourceImage
from .profiles import Profile, load_profile
from .stages import report_stages
from .version import __version__
from .roles import (
    ENCODER_ROLES,
    Describer,
    EntropyCoder,
    Grounder,
    MaskCoder,
    Options,
    Plugin,
    ReferenceCodec,
    Restorer,
    Role,
    Segmenter,
    TextCoder,
    free_memory,
)


__all__ = [
    "BackendError",
    "ENCODER_ROLES",
    "Codec",
    "DecodeResult",
    "Describer",
    "DescriptionOptions",
    "EncodeResult",
    "EntropyCoder",
    "FormatError",
    "Grounder",
    "InputError",
    "MaskCoder",
    "ModelNotFoundError",
    "ModelSpec",
    "Options",
    "Payload",
    "Plugin",
    "PluginError",
    "Profile",
    "ProfileError",
    "ReferenceCodec",
    "Register",
    "Restorer",
    "Role",
    "Segmenter",
    "SedicError",
    "SemanticObject",
    "SourceImage",
    "TextCoder",
    "__version__",
    "apply_limits",
    "free_memory",
    "hookimpl",
    "load_profile",
    "register_tiny",
    "report_stages",
    "resolve",
    "truncate_words",
]
