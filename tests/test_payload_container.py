"""The .sedic container: layout, bit accounting, and every way a file can be damaged."""

from __future__ import annotations

import pytest

from sedic_kit.container import FORMAT_VERSION, MAGIC, PluginRef, SedicFile, pack, put_varint, unpack
from sedic_kit.errors import FormatError
from sedic_kit.payload import Payload, SemanticObject
from sedic_kit.roles import DECODER_ROLES, Role


def sample(**kw: object) -> SedicFile:
    refs = {r: PluginRef(f"p-{r.value}", 1, {}) for r in DECODER_ROLES}
    refs[Role.restorer] = PluginRef("upsample", 2, {"filter": "bicubic", "seed": 7})
    fields = dict(width=768, height=512, plugins=refs, reference=b"R" * 1500, text=b"T" * 120, masks=b"M" * 60)
    fields.update(kw)
    return SedicFile(**fields)  # type: ignore[arg-type]


def test_round_trip_and_bit_accounting() -> None:
    f = sample(extras={"hint": b"\x01\x02"})
    data, bits = pack(f)
    assert sum(bits.values()) == 8 * len(data)
    assert bits["reference"] == 8 * 1500 and bits["text"] == 8 * 120 and bits["masks"] == 8 * 60
    assert bits["extra:hint"] == 16
    assert unpack(data) == f


def test_framing_is_at_most_16_bytes_for_kodak_sized_sections() -> None:
    _, bits = pack(sample())
    # magic 2 + version 1 + size 4 + lengths 2+1+1 + CRC 4
    assert bits["framing"] <= 16 * 8


def test_config_records_ids_versions_and_params() -> None:
    f = unpack(pack(sample())[0])
    assert f.plugins[Role.restorer] == PluginRef("upsample", 2, {"filter": "bicubic", "seed": 7})


def test_unknown_version_is_named() -> None:
    data = bytearray(pack(sample())[0][:-4])
    data[len(MAGIC)] = FORMAT_VERSION + 6
    import struct
    import zlib

    data += struct.pack(">I", zlib.crc32(data))
    with pytest.raises(FormatError, match=r"unsupported \.sedic format version 7"):
        unpack(bytes(data))


def test_not_a_sedic_file() -> None:
    with pytest.raises(FormatError, match="not a .sedic file"):
        unpack(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(FormatError):
        unpack(b"")


def test_every_truncation_and_every_flipped_byte_is_detected() -> None:
    data, _ = pack(sample(reference=b"R" * 40, text=b"T" * 10, masks=b"M" * 5))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        with pytest.raises(FormatError):
            unpack(bytes(bad))


def test_varint_limits() -> None:
    out = bytearray()
    put_varint(out, 300)
    assert bytes(out) == b"\xac\x02"
    with pytest.raises(ValueError):
        put_varint(bytearray(), -1)


def test_payload_text_order_round_trips() -> None:
    p = Payload(10, 10, "cap", [SemanticObject("a", "x"), SemanticObject("b", "")])
    caption, objects = Payload.split_texts(p.texts())
    assert caption == "cap" and [(o.name, o.details) for o in objects] == [("a", "x"), ("b", "")]
    with pytest.raises(ValueError):
        Payload.split_texts(["cap", "orphan"])
