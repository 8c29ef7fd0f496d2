"""sedic-kit: pluggable SEDIC-style semantic image compression at extremely low bitrates."""

from importlib.metadata import PackageNotFoundError, version

from .codec import Codec, DecodeResult, EncodeResult
from .errors import FormatError, InputError, ModelNotFoundError, PluginError, ProfileError, SedicError
from .hookspecs import hookimpl
from .payload import Payload, SemanticObject, SourceImage
from .profiles import Profile, load_profile
from .roles import Describer, Grounder, MaskCoder, ReferenceCodec, Restorer, Role, Segmenter, TextCoder

try:
    __version__ = version("sedic-kit")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "Codec",
    "DecodeResult",
    "Describer",
    "EncodeResult",
    "FormatError",
    "Grounder",
    "InputError",
    "MaskCoder",
    "ModelNotFoundError",
    "Payload",
    "PluginError",
    "Profile",
    "ProfileError",
    "ReferenceCodec",
    "Restorer",
    "Role",
    "Segmenter",
    "SedicError",
    "SemanticObject",
    "SourceImage",
    "TextCoder",
    "__version__",
    "hookimpl",
    "load_profile",
]
