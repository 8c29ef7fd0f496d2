"""Strip and rebuild the HEIF/AVIF container around a single coded image.

An AVIF or HEIC file from Pillow is ~270-420 bytes of ISOBMFF boxes (ftyp, meta with iloc,
iinf, ispe, av1C/hvcC, colr, pixi) plus one ``mdat`` holding the coded image. Those boxes
depend only on the image size and the encoder settings, never on the pixels, so the reference
section keeps only the ``mdat`` payload; the decoder encodes a flat image of the same size with
the same settings (the *template*), and swaps its payload for the stored one. Another build of
the decoding library may write other boxes (HEIC's parameter sets in ``hvcC`` come from x265), so
the section also carries a 2-byte :func:`check_value` of the encoder's boxes: a mismatch is an
error naming the library versions, never a silently wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from sedic_kit.errors import FormatError


@dataclass(frozen=True)
class Box:
    type: bytes
    start: int
    header: int
    end: int

    @property
    def body(self) -> int:
        return self.start + self.header


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    """The boxes in ``data[start:end]`` (one level)."""
    end = len(data) if end is None else end
    out: list[Box] = []
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise FormatError("truncated ISOBMFF box header")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise FormatError(f"bad ISOBMFF box size for {kind!r}")
        out.append(Box(kind, pos, header, pos + size))
        pos += size
    return out


def find(items: list[Box], kind: bytes) -> Box:
    for box in items:
        if box.type == kind:
            return box
    raise FormatError(f"no {kind.decode()} box in the container")


def _read_uint(data: bytes, pos: int, size: int) -> int:
    return int.from_bytes(data[pos : pos + size], "big") if size else 0


def _iloc_extent(data: bytes, iloc: Box, mdat_body: int) -> tuple[int, int]:
    """Position and byte size of the ``extent_length`` field of the iloc extent starting at ``mdat_body``."""
    pos = iloc.body
    version = data[pos]
    pos += 4
    offset_size, length_size = data[pos] >> 4, data[pos] & 15
    base_offset_size, index_size = data[pos + 1] >> 4, (data[pos + 1] & 15 if version in (1, 2) else 0)
    pos += 2
    id_size = 4 if version == 2 else 2
    count = _read_uint(data, pos, id_size)
    pos += id_size
    for _ in range(count):
        pos += id_size + (2 if version in (1, 2) else 0) + 2  # item_ID, construction_method, data_reference_index
        base = _read_uint(data, pos, base_offset_size)
        pos += base_offset_size
        extents = _read_uint(data, pos, 2)
        pos += 2
        for _ in range(extents):
            pos += index_size
            offset = _read_uint(data, pos, offset_size)
            pos += offset_size
            if base + offset == mdat_body and length_size:
                return pos, length_size
            pos += length_size
    raise FormatError("the container's iloc does not point at its mdat")


def check_value(data: bytes) -> bytes:
    """2 bytes of CRC-32 over every box but the coded image (the ``mdat`` payload and its length
    in ``iloc`` excluded): equal for the encoder's file and the decoder's template exactly when
    the template rebuilds the encoder's container (same library build and settings)."""
    top = boxes(data)
    mdat = find(top, b"mdat")
    meta = find(top, b"meta")
    field, size = _iloc_extent(data, find(boxes(data, meta.body + 4, meta.end), b"iloc"), mdat.body)
    header = bytearray(data[: mdat.start])
    header[field : field + size] = bytes(size)
    return (zlib.crc32(header) & 0xFFFF).to_bytes(2, "big")


def payload(data: bytes) -> bytes:
    """The coded image inside a single-image HEIF/AVIF file."""
    top = boxes(data)
    mdat = find(top, b"mdat")
    return data[mdat.body : mdat.end]


def rebuild(template: bytes, coded: bytes) -> bytes:
    """``template`` (same size and settings) with its ``mdat`` payload replaced by ``coded``."""
    top = boxes(template)
    mdat = find(top, b"mdat")
    if mdat is not top[-1] or mdat.header != 8:
        raise FormatError("unexpected template layout (mdat must come last)")
    meta = find(top, b"meta")
    iloc = find(boxes(template, meta.body + 4, meta.end), b"iloc")
    field, size = _iloc_extent(template, iloc, mdat.body)
    if len(coded) >= 1 << (8 * size):
        raise FormatError("coded image too large for the container template")
    out = bytearray(template[: mdat.start])
    out[field : field + size] = len(coded).to_bytes(size, "big")
    out += struct.pack(">I4s", 8 + len(coded), b"mdat") + coded
    return bytes(out)
