"""The ``.sedic`` container (specified in docs/format.md).

Version 2 (written): magic, format version, width-1 (with an extras flag), height-1, a compact
decoder config (built-in plugins by numeric id, typed parameters), the reference and text
sections with their lengths, extra sections if flagged, the mask section (to the end), CRC32.
Version 1 (still read): plugin ids and parameters spelled out as strings and JSON, every section
length-prefixed, extras last.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .bounded_json import loads_bounded
from .errors import FormatError
from .plugin_ids import BUILTIN_IDS, builtin_id
from .roles import DECODER_ROLES, Role

MAGIC = b"\x5e\xdc"
FORMAT_VERSION = 2
"""The version written."""
READ_VERSIONS = (1, 2)
"""Every version this release decodes (the compatibility promise of docs/format.md)."""
MAX_SIDE = 1 << 20
MAX_PARAMS_BYTES = 4096
"""Decoder parameters of one plugin: a few small options, never nested deeply."""
MAX_PARAMS_DEPTH = 4


@dataclass(frozen=True)
class PluginRef:
    """A decoder-side plugin as recorded in the header."""

    name: str
    version: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SedicFile:
    width: int
    height: int
    plugins: dict[Role, PluginRef]
    reference: bytes = b""
    text: bytes = b""
    masks: bytes = b""
    extras: dict[str, bytes] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    """The format version it was read from (files are always written in :data:`FORMAT_VERSION`)."""


def put_varint(out: bytearray, value: int) -> None:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError("varint must be >= 0")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def put_bytes(out: bytearray, data: bytes) -> None:
    put_varint(out, len(data))
    out += data


# Value tags of format-2 parameters (3 bits, below the key index).
T_NONE, T_FALSE, T_TRUE, T_UINT, T_NEGINT, T_FLOAT32, T_FLOAT64, T_STR = range(8)


def put_value(out: bytearray, key: int, value: Any) -> None:
    """One parameter: ``varint(key << 3 | tag)`` then the value's bytes (none for None/bools)."""
    body = bytearray()
    if value is None or isinstance(value, bool):
        tag = T_NONE if value is None else T_TRUE if value else T_FALSE
    elif isinstance(value, int):
        tag = T_UINT if value >= 0 else T_NEGINT
        put_varint(body, value if value >= 0 else -value - 1)
    elif isinstance(value, float):
        try:
            single = struct.pack(">f", value)
        except OverflowError:  # beyond float32's range
            single = b""
        tag = T_FLOAT32 if single and struct.unpack(">f", single)[0] == value else T_FLOAT64
        body += single if tag == T_FLOAT32 else struct.pack(">d", value)
    elif isinstance(value, str):
        tag = T_STR
        put_bytes(body, value.encode())
    else:
        raise ValueError(f"decode parameter values must be None, bool, int, float or str, got {value!r}")
    put_varint(out, key << 3 | tag)
    out += body


class Reader:
    """Bounds-checked reader over bytes; every failure is a :class:`FormatError`."""

    def __init__(self, data: bytes | memoryview, end: int | None = None) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.end = len(data) if end is None else end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise FormatError(f"truncated .sedic file (while reading {what})")
        chunk = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return chunk

    def varint(self, what: str) -> int:
        value = shift = 0
        while True:
            if self.pos >= self.end:
                raise FormatError(f"truncated .sedic file (while reading {what})")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise FormatError(f"corrupt .sedic file (bad number in {what})")

    def blob(self, what: str) -> bytes:
        return self.take(self.varint(f"{what} length"), what)

    def value(self, what: str) -> tuple[int, Any]:
        """A parameter written by :func:`put_value`: its key index and value."""
        head = self.varint(what)
        key, tag = head >> 3, head & 7
        if tag in (T_NONE, T_FALSE, T_TRUE):
            return key, (None, False, True)[tag]
        if tag in (T_UINT, T_NEGINT):
            number = self.varint(what)
            return key, number if tag == T_UINT else -number - 1
        if tag in (T_FLOAT32, T_FLOAT64):
            fmt = ">f" if tag == T_FLOAT32 else ">d"
            return key, struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]
        try:
            return key, self.blob(what).decode()
        except UnicodeDecodeError:
            raise FormatError(f"corrupt .sedic file (bad {what})") from None


def pack(f: SedicFile) -> tuple[bytes, dict[str, int]]:
    """Serialise in format 2; also return the size in bits of every part (they add up to the file)."""
    if not (0 < f.width <= MAX_SIDE and 0 < f.height <= MAX_SIDE):
        raise ValueError(f"image size {f.width}x{f.height} out of range")
    for tag in f.extras:
        if not tag:
            raise ValueError("invalid extra section tag ''")
    out = bytearray(MAGIC)
    put_varint(out, FORMAT_VERSION)
    put_varint(out, (f.width - 1) << 1 | bool(f.extras))
    put_varint(out, f.height - 1)
    framing = len(out)
    for role in DECODER_ROLES:
        put_plugin(out, role, f.plugins[role])
    config = len(out) - framing
    bits: dict[str, int] = {}
    for name, body in (("reference", f.reference), ("text", f.text)):
        put_bytes(out, body)
        bits[name] = 8 * len(body)
    if f.extras:
        put_varint(out, len(f.extras))
        for tag, body in f.extras.items():
            put_bytes(out, tag.encode())
            put_bytes(out, body)
            bits[f"extra:{tag}"] = 8 * len(body)
    out += f.masks
    bits["masks"] = 8 * len(f.masks)
    out += struct.pack(">I", zlib.crc32(out))
    bits = {"framing": 8 * (len(out) - config) - sum(bits.values()), "config": 8 * config, **bits}
    return bytes(out), bits


def put_plugin(out: bytearray, role: Role, ref: PluginRef) -> None:
    """``varint(id << 1 | has_params)``; id 0: name and version follow; then the parameters.

    A plugin is written by name when it has no id for this version or sets a parameter its id
    does not list (the decoder then names the unknown parameter).
    """
    number = builtin_id(role, ref.name, ref.version)
    keys = list(BUILTIN_IDS[role][number].params) if number is not None else []
    if number is not None and not set(ref.params) <= set(keys):
        number = None
    put_varint(out, (number or 0) << 1 | bool(ref.params))
    if number is None:
        put_bytes(out, ref.name.encode())
        put_varint(out, ref.version)
    if not ref.params:
        return
    put_varint(out, len(ref.params))
    for key in sorted(ref.params, key=keys.index) if number is not None else sorted(ref.params):
        if number is None:
            put_bytes(out, key.encode())
        put_value(out, keys.index(key) if number is not None else 0, ref.params[key])


def unpack(data: bytes) -> SedicFile:
    """Parse and verify a ``.sedic`` file of any version in :data:`READ_VERSIONS`; every problem
    raises a one-line :class:`FormatError`."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a .sedic file (bad magic bytes)")
    if len(data) < len(MAGIC) + 1 + 4:
        raise FormatError("truncated .sedic file")
    stored = struct.unpack(">I", data[-4:])[0]
    if zlib.crc32(data[:-4]) != stored:
        raise FormatError("corrupt or truncated .sedic file (CRC32 mismatch)")
    r = Reader(data, end=len(data) - 4)
    r.pos = len(MAGIC)
    version = r.varint("format version")
    if version not in READ_VERSIONS:
        raise FormatError(
            f"unsupported .sedic format version {version} (this sedic-kit reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}); upgrade sedic-kit"
        )
    return _unpack_v1(r) if version == 1 else _unpack_v2(r)


def _size(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE:
        raise FormatError(f"corrupt .sedic file (image size {width}x{height})")


def _unpack_v2(r: Reader) -> SedicFile:
    first = r.varint("width")
    width, has_extras = (first >> 1) + 1, bool(first & 1)
    height = r.varint("height") + 1
    _size(width, height)
    plugins = {role: _read_plugin(r, role) for role in DECODER_ROLES}
    reference = r.blob("reference section")
    text = r.blob("text section")
    extras: dict[str, bytes] = {}
    if has_extras:
        count = r.varint("extra section count")
        if count > r.end - r.pos:
            raise FormatError("corrupt .sedic file (extra section count)")
        for _ in range(count):
            tag = _tag(r)
            extras[tag] = r.blob(f"extra section {tag!r}")
    masks = r.take(r.end - r.pos, "mask section")
    return SedicFile(width, height, plugins, reference, text, masks, extras, 2)


def _read_plugin(r: Reader, role: Role) -> PluginRef:
    head = r.varint(f"{role.value} id")
    number, has_params = head >> 1, head & 1
    if number:
        entry = BUILTIN_IDS[role].get(number)
        if entry is None:
            raise FormatError(
                f"this file needs {role.value} #{number}, a built-in plugin this sedic-kit does not know; upgrade sedic-kit"
            )
        name, version = entry.name, entry.version
    else:
        try:
            name = r.blob(f"{role.value} id").decode()
        except UnicodeDecodeError:
            raise FormatError(f"corrupt .sedic file (bad {role.value} id)") from None
        version = r.varint(f"{role.value} version")
    params: dict[str, Any] = {}
    count = r.varint(f"{role.value} parameter count") if has_params else 0
    if count > r.end - r.pos:
        raise FormatError(f"corrupt .sedic file (bad {role.value} parameters)")
    for _ in range(count):
        if number:
            index, value = r.value(f"{role.value} parameter")
            keys = BUILTIN_IDS[role][number].params
            if index >= len(keys):
                raise FormatError(f"corrupt .sedic file (bad {role.value} parameters)")
            key = keys[index]
        else:
            try:
                key = r.blob(f"{role.value} parameter name").decode()
            except UnicodeDecodeError:
                raise FormatError(f"corrupt .sedic file (bad {role.value} parameters)") from None
            value = r.value(f"{role.value} parameter")[1]
        params[key] = value
    return PluginRef(name, version, params)


def _tag(r: Reader) -> str:
    try:
        return r.blob("extra section tag").decode()
    except UnicodeDecodeError:
        raise FormatError("corrupt .sedic file (bad extra section tag)") from None


def _unpack_v1(r: Reader) -> SedicFile:
    width = r.varint("width") + 1
    height = r.varint("height") + 1
    _size(width, height)
    plugins: dict[Role, PluginRef] = {}
    for role in DECODER_ROLES:
        try:
            name = r.blob(f"{role.value} id").decode()
            ver = r.varint(f"{role.value} version")
            raw = r.blob(f"{role.value} parameters")
            params = loads_bounded(raw, max_bytes=MAX_PARAMS_BYTES, max_depth=MAX_PARAMS_DEPTH) if raw else {}
        except ValueError as exc:  # also UnicodeDecodeError
            raise FormatError(f"corrupt .sedic file (bad {role.value} config: {exc})") from None
        if not isinstance(params, dict):
            raise FormatError(f"corrupt .sedic file (bad {role.value} parameters)")
        plugins[role] = PluginRef(name, ver, params)
    reference = r.blob("reference section")
    text = r.blob("text section")
    masks = r.blob("mask section")
    extras: dict[str, bytes] = {}
    while r.pos < r.end:
        tag = _tag(r)
        extras[tag] = r.blob(f"extra section {tag!r}")
    return SedicFile(width, height, plugins, reference, text, masks, extras, 1)
