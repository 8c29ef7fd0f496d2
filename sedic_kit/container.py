"""The ``.sedic`` container (specified in docs/format.md).

Layout: magic, format version, width-1, height-1, decoder config (self-delimiting), lengths and
bodies of the reference, text and mask sections, optional tagged extra sections, CRC32.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .bounded_json import loads_bounded
from .errors import FormatError
from .roles import DECODER_ROLES, Role

MAGIC = b"\x5e\xdc"
FORMAT_VERSION = 1
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


def pack(f: SedicFile) -> tuple[bytes, dict[str, int]]:
    """Serialise; also return the size in bits of every part (they add up to the file)."""
    if not (0 < f.width <= MAX_SIDE and 0 < f.height <= MAX_SIDE):
        raise ValueError(f"image size {f.width}x{f.height} out of range")
    out = bytearray(MAGIC)
    put_varint(out, FORMAT_VERSION)
    put_varint(out, f.width - 1)
    put_varint(out, f.height - 1)
    framing = len(out)
    start = len(out)
    for role in DECODER_ROLES:
        ref = f.plugins[role]
        put_bytes(out, ref.name.encode())
        put_varint(out, ref.version)
        put_bytes(out, json.dumps(ref.params, separators=(",", ":"), sort_keys=True).encode() if ref.params else b"")
    config = len(out) - start
    bits: dict[str, int] = {}
    for name, body in (("reference", f.reference), ("text", f.text), ("masks", f.masks)):
        before = len(out)
        put_bytes(out, body)
        framing += len(out) - before - len(body)
        bits[name] = 8 * len(body)
    for tag, body in f.extras.items():
        if not tag or tag in bits:
            raise ValueError(f"invalid extra section tag {tag!r}")
        before = len(out)
        put_bytes(out, tag.encode())
        put_bytes(out, body)
        framing += len(out) - before - len(body)
        bits[f"extra:{tag}"] = 8 * len(body)
    out += struct.pack(">I", zlib.crc32(out))
    framing += 4
    bits = {"framing": 8 * framing, "config": 8 * config, **bits}
    assert sum(bits.values()) == 8 * len(out)
    return bytes(out), bits


def unpack(data: bytes) -> SedicFile:
    """Parse and verify a ``.sedic`` file; every problem raises a one-line :class:`FormatError`."""
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
    if version != FORMAT_VERSION:
        raise FormatError(
            f"unsupported .sedic format version {version} (this sedic-kit reads version {FORMAT_VERSION}); "
            "upgrade sedic-kit"
        )
    width = r.varint("width") + 1
    height = r.varint("height") + 1
    if width > MAX_SIDE or height > MAX_SIDE:
        raise FormatError(f"corrupt .sedic file (image size {width}x{height})")
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
        try:
            tag = r.blob("extra section tag").decode()
        except UnicodeDecodeError:
            raise FormatError("corrupt .sedic file (bad extra section tag)") from None
        extras[tag] = r.blob(f"extra section {tag!r}")
    return SedicFile(width, height, plugins, reference, text, masks, extras)
