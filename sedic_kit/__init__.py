"""sedic-kit: pluggable SEDIC-style semantic image compression at extremely low bitrates."""

from importlib.metadata import PackageNotFoundError, version

from .codec import Codec, DecodeResult, EncodeResult, report_stages
from .describe import DescriptionOptions, apply_limits, truncate_words
from .errors import BackendError, FormatError, InputError, ModelNotFoundError, PluginError, ProfileError, SedicError
from .hookspecs import Register, hookimpl
from .models import ModelSpec, register_tiny, resolve
from .payload import Payload, SemanticObject, SourceImage
from .profiles import Profile, load_profile
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

try:
    __version__ = version("sedic-kit")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

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
