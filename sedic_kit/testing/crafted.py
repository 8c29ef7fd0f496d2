"""Crafted format-2 files for the decoder fuzzer (:mod:`sedic_kit.testing.fuzz`): each generator rebuilds
a real file field by field, with one part of the layout made hostile and the CRC recomputed.

Classes: overlong and huge varints, the E flag and extra sections, plugin ids per role, typed
parameters (every tag, key and value kind), section lengths, header sizes against the sizes
the embedded containers declare, random ``lm`` text and ``cabac`` mask streams at every scale,
and CompressAI strings and shapes (or a CompressAI id on another codec's bytes).
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

from ..container import MAGIC, FORMAT_VERSION, PluginRef, SedicFile, put_bytes, put_plugin, put_value, put_varint, unpack
from ..plugin_ids import BUILTIN_IDS
from ..plugins import get_registry
from ..roles import DECODER_ROLES, Role

COMPRESSAI = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn")
HOSTILE_NAMES = ("", "x" * 300, "a\nb", "\x1b[31mred\x1b[0m", "tab\there", "\u202egnp", "\r\n\r\n", "\x00", "\u00e9")
BUDGET_SIDES = (1, 2, 63, 64, 65, 1000, 2048, 4095, 4096, 4097, 10000, 1 << 20)


def with_crc(body: bytes) -> bytes:
    """``body`` (a file without its trailer) with a valid CRC-32 trailer."""
    return body + struct.pack(">I", zlib.crc32(body))


def swap(f: SedicFile, role: Role, name: str, params: dict | None = None) -> SedicFile:
    """``f`` decoded by the installed plugin ``name`` (at its version) in ``role``."""
    cls = get_registry().get(role, name)
    plugins = dict(f.plugins)
    plugins[role] = PluginRef(name, cls.version, params or {})
    return SedicFile(f.width, f.height, plugins, f.reference, f.text, f.masks, dict(f.extras))


def varint(value: int, padding: int = 0) -> bytes:
    """``value`` as LEB128, with ``padding`` redundant continuation bytes (an overlong encoding)."""
    out = bytearray()
    put_varint(out, value)
    if padding:
        out[-1] |= 0x80
        out += b"\x80" * (padding - 1) + b"\x00"
    return bytes(out)


def config(f: SedicFile) -> bytes:
    out = bytearray()
    for role in DECODER_ROLES:
        put_plugin(out, role, f.plugins[role])
    return bytes(out)


def extras_bytes(extras: dict[str, bytes]) -> bytes:
    out = bytearray()
    put_varint(out, len(extras))
    for tag, body in extras.items():
        put_bytes(out, tag.encode())
        put_bytes(out, body)
    return bytes(out)


def write_v2(
    f: SedicFile,
    *,
    size: tuple[bytes, bytes] | None = None,
    flag: bool | None = None,
    plugins: bytes | None = None,
    lengths: tuple[bytes, bytes] | None = None,
    extras: bytes | None = None,
) -> bytes:
    """``f`` in format 2, any field replaced by raw bytes (``size``: the width-1/height-1 varints
    without the flag; ``lengths``: the reference and text length varints)."""
    has_extras = bool(f.extras) if flag is None else flag
    out = bytearray(MAGIC)
    put_varint(out, FORMAT_VERSION)
    if size is None:
        out += varint((f.width - 1) << 1 | has_extras) + varint(f.height - 1)
    else:
        out += size[0] + size[1]
    out += config(f) if plugins is None else plugins
    ref_len, text_len = lengths or (varint(len(f.reference)), varint(len(f.text)))
    out += ref_len + f.reference + text_len + f.text
    if has_extras:
        out += extras_bytes(f.extras) if extras is None else extras
    out += f.masks
    return with_crc(bytes(out))


def _huge(rng: random.Random) -> int:
    return rng.choice([1 << 20, (1 << 20) + 1, 1 << 31, 1 << 32, 1 << 40, (1 << 63) - 1, rng.randrange(1 << 62)])


def g_varints(data: bytes, rng: random.Random) -> bytes:
    """Overlong encodings of every varint, or one varint made huge."""
    f = unpack(data)
    pad = rng.choice([1, 2, 5, 8, 9, 12])
    field = rng.randrange(4)
    if field == 0:  # the size varints (width carries the E flag)
        w = _huge(rng) if rng.random() < 0.5 else f.width - 1
        return write_v2(f, size=(varint(w << 1 | bool(f.extras), pad), varint(f.height - 1, pad)))
    if field == 1:
        return write_v2(f, lengths=(varint(len(f.reference), pad), varint(len(f.text), pad)))
    if field == 2:
        which = rng.randrange(2)
        lengths = [varint(len(f.reference)), varint(len(f.text))]
        lengths[which] = varint(_huge(rng))
        return write_v2(f, lengths=(lengths[0], lengths[1]))
    out = bytearray(MAGIC) + varint(FORMAT_VERSION, pad)
    return with_crc(bytes(out) + write_v2(f)[len(MAGIC) + 1 : -4])


def g_extras(data: bytes, rng: random.Random) -> bytes:
    """The E flag against the extra sections: missing, counted wrongly, odd tags, lying lengths."""
    f = unpack(data)
    choice = rng.randrange(5)
    if choice == 0:  # flag set, nothing there (the mask section is read as extras)
        return write_v2(f, flag=True, extras=b"")
    if choice == 1:
        return write_v2(f, flag=True, extras=varint(rng.choice([0, 1, 2, 255, _huge(rng)])))
    tag = rng.choice([*HOSTILE_NAMES, "t", "t"]).encode()
    if rng.random() < 0.2:
        tag = rng.randbytes(rng.randint(1, 8))  # not UTF-8, mostly
    body = rng.randbytes(rng.choice([0, 1, 64, 4096]))
    count = rng.choice([1, 2, 3])
    out = bytearray(varint(count))
    for _ in range(count):
        out += varint(len(tag)) + tag
        out += varint(len(body) + rng.choice([0, 0, 1, -1, 1000]) if body else 0) + body
    return write_v2(f, flag=choice != 4, extras=bytes(out))


def g_plugin_ids(data: bytes, rng: random.Random) -> bytes:
    """A role's plugin by a numeric id (known, unknown, another role's) or by a hostile name."""
    f = unpack(data)
    role = rng.choice(DECODER_ROLES)
    out = bytearray()
    for r in DECODER_ROLES:
        if r is not role:
            put_plugin(out, r, f.plugins[r])
            continue
        if rng.random() < 0.5:
            other = rng.choice(DECODER_ROLES)
            number = rng.choice([*BUILTIN_IDS[other], 0, 12, 63, 64, 1000, _huge(rng)])
            out += varint(number << 1 | rng.randrange(2))
            if number == 0:
                out += varint(0) + varint(1)
        else:
            names = [n for x in Role for n in get_registry().names(x)]
            name = rng.choice([*HOSTILE_NAMES, *names])
            out += varint(0) + varint(len(name.encode())) + name.encode() + varint(rng.choice([0, 1, 2, 3, _huge(rng)]))
    return write_v2(f, plugins=bytes(out))


def _random_param(rng: random.Random, key: int) -> bytes:
    out = bytearray()
    kind = rng.randrange(6)
    if kind == 0:
        put_value(out, key, rng.choice([None, True, False, 0, 1, 2, 7, 64, 100, 1000, 1 << 40, -1, -(1 << 40)]))
    elif kind == 1:
        put_value(out, key, rng.choice([0.0, 0.5, 1.0, 1e-30, 1e30, 1e308, float("nan"), float("inf"), -float("inf")]))
    elif kind == 2:
        put_value(out, key, rng.choice([*HOSTILE_NAMES, "lanczos", "4:2:0", "mse", "ddim", "sedic-kit", "paper"]))
    elif kind == 3:  # a tag with a body of the wrong kind or length
        out += varint(key << 3 | rng.randrange(8)) + rng.randbytes(rng.randint(0, 9))
    elif kind == 4:  # a string claiming more bytes than the file has
        out += varint(key << 3 | 7) + varint(_huge(rng))
    else:
        out += varint(key << 3 | 3) + varint(_huge(rng))
    return bytes(out)


def g_params(data: bytes, rng: random.Random) -> bytes:
    """Typed parameters: every tag, known and out-of-range keys, values of every kind, hostile names."""
    f = unpack(data)
    role = rng.choice(DECODER_ROLES)
    ref = f.plugins[role]
    out = bytearray()
    for r in DECODER_ROLES:
        if r is not role:
            put_plugin(out, r, f.plugins[r])
            continue
        count = rng.choice([1, 2, 3, 8, _huge(rng)])
        by_name = rng.random() < 0.3
        numbers = [n for n, e in BUILTIN_IDS[r].items() if (e.name, e.version) == (ref.name, ref.version)]
        if by_name or not numbers:
            out += varint(1) + varint(len(ref.name)) + ref.name.encode() + varint(ref.version) + varint(count)
            for _ in range(min(count, 8)):
                key = rng.choice([*HOSTILE_NAMES, *get_registry().get(r, ref.name).decode_params, "nope"]).encode()
                out += varint(len(key)) + key + _random_param(rng, 0)
        else:
            keys = BUILTIN_IDS[r][numbers[0]].params
            out += varint(numbers[0] << 1 | 1) + varint(count)
            for _ in range(min(count, 8)):
                out += _random_param(rng, rng.choice([*range(len(keys)), len(keys), 31, 1 << 20]))
    return write_v2(f, plugins=bytes(out))


def g_lengths(data: bytes, rng: random.Random) -> bytes:
    """Reference and text lengths that lie by a little or a lot (the sections shift)."""
    f = unpack(data)
    delta = rng.choice([-64, -8, -1, 1, 8, 64, len(f.masks), len(f.masks) + 1])
    ref_len, text_len = len(f.reference), len(f.text)
    if rng.random() < 0.5:
        ref_len = max(0, ref_len + delta)
    else:
        text_len = max(0, text_len + delta)
    return write_v2(f, lengths=(varint(ref_len), varint(text_len)))


def reference_claiming(f: SedicFile, coded: tuple[int, int], rng: random.Random | None = None) -> bytes:
    """The reference section with the coded size it declares set to ``coded``."""
    name, section = f.plugins[Role.reference_codec].name, bytearray(f.reference)
    if name in ("avif", "heic"):
        from ..container import Reader

        r = Reader(bytes(section))
        r.varint("coded width"), r.varint("coded height")
        return varint(coded[0] - 1) + varint(coded[1] - 1) + bytes(section[r.pos :])
    if name == "webp" and len(section) >= 10:
        section[6:10] = struct.pack("<HH", min(coded[0], 16383) | (rng.choice([0, 0x4000]) if rng else 0), min(coded[1], 16383))
    elif name == "jpeg":
        sof = section.find(b"\xff\xc0")
        if sof >= 0:
            section[sof + 5 : sof + 9] = struct.pack(">HH", min(coded[1], 65535), min(coded[0], 65535))
    return bytes(section)


def g_declared(data: bytes, rng: random.Random) -> bytes:
    """Header sizes up to and past the budget, against the coded size the reference declares
    (the same image at 1/1 to 1/64, larger, or a size of its own)."""
    f = unpack(data)
    w, h = rng.choice(BUDGET_SIDES), rng.choice(BUDGET_SIDES)
    if rng.random() < 0.5:
        w, h = min(w, 4096), min(h, 4096)
    scale = rng.choice([1, 1, 2, 8, 64, 65, 0.5])
    coded = (max(1, round(w / scale)), max(1, round(h / scale)))
    if rng.random() < 0.2:
        coded = (rng.choice(BUDGET_SIDES), rng.choice(BUDGET_SIDES))
    reference = reference_claiming(f, coded, rng)
    return write_v2(SedicFile(w, h, f.plugins, reference, f.text, f.masks, f.extras))


def g_lm_stream(data: bytes, rng: random.Random) -> bytes:
    """Random bytes for the ``lm`` text coder."""
    f = unpack(data)
    text = rng.randbytes(rng.choice([1, 2, 8, 64, 600, 4096]))
    if rng.random() < 0.3:
        text = rng.choice([b"\x00", b"\xff"]) * len(text)
    return write_v2(swap(SedicFile(f.width, f.height, f.plugins, f.reference, text, f.masks, f.extras), Role.text_coder, "lm"))


def g_cabac_stream(data: bytes, rng: random.Random) -> bytes:
    """Random ``cabac`` streams at every grid scale, under headers the reference still fits (1/1 to 1/64)."""
    f = unpack(data)
    masks = rng.randbytes(rng.choice([1, 4, 64, 1024, 9000]))
    if rng.random() < 0.3:
        masks = rng.choice([b"\x00", b"\xff"]) * len(masks)
    scale = rng.choice([1, 1, 2, 8, 64])
    grow = rng.choice([1, 2, 4, 8])
    w, h = min(f.width * grow, 4096), min(f.height * grow, 4096)
    g = SedicFile(w, h, f.plugins, f.reference, f.text, masks, f.extras)
    return write_v2(swap(g, Role.mask_coder, "cabac", {"scale": scale} if scale != 8 else {}))


def g_compressai(data: bytes, rng: random.Random) -> bytes:
    """CompressAI sections: strings of bad count, length and alignment, empty, random, swapped,
    under other header sizes and other architectures; or a CompressAI id on another codec's bytes."""
    f = unpack(data)
    ref = f.plugins[Role.reference_codec]
    arch = rng.choice(COMPRESSAI)
    params: dict[str, Any] = {"pretrained": False, **({"quality": rng.randint(1, 6)} if rng.random() < 0.3 else {})}
    if ref.name not in COMPRESSAI:  # another codec's bytes under a CompressAI id
        return write_v2(swap(f, Role.reference_codec, arch, params))
    from ..container import Reader

    r = Reader(f.reference)
    y = r.take(r.varint("y length"), "y")
    z = f.reference[r.pos :]
    w, h = f.width, f.height
    choice = rng.randrange(8)
    if choice == 0:
        y, z = b"", b""
    elif choice == 1:
        y, z = y[: rng.randrange(len(y) + 1)], z[: rng.randrange(len(z) + 1)]
    elif choice == 2:
        y, z = z, y
    elif choice == 3:
        y, z = rng.randbytes(len(y) // 4 * 4 or 8), rng.randbytes(len(z) // 4 * 4 or 8)
    elif choice == 4:  # another image size: the hyper-latent shape changes
        w, h = rng.choice([w * 2, w + 64, 1000, 4000, max(1, w - 64)]), rng.choice([h * 2, h + 64, 1000, 4000, max(1, h - 64)])
    elif choice == 5:
        arch = rng.choice(COMPRESSAI)
        params = {**ref.params}
    elif choice == 6:
        params = {**ref.params, "downscale": rng.choice([0.5, 1.0, 1.5, 16.0, 17.0])}
    else:
        y = y + rng.randbytes(rng.choice([1, 4, 1000]))
    section = varint(len(y)) + y + z
    if rng.random() < 0.1:
        section = varint(rng.choice([_huge(rng), len(y) + len(z) + 1])) + y + z
    g = SedicFile(w, h, f.plugins, section, f.text, f.masks, f.extras)
    return write_v2(swap(g, Role.reference_codec, arch if choice == 5 else ref.name, params))


GENERATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "v2-varint": g_varints,
    "v2-extras": g_extras,
    "v2-plugin-id": g_plugin_ids,
    "v2-params": g_params,
    "v2-lengths": g_lengths,
    "declared-size": g_declared,
    "lm-stream": g_lm_stream,
    "cabac-stream": g_cabac_stream,
    "compressai": g_compressai,
}
