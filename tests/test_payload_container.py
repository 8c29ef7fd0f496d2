"""The .sedic container: layout, bit accounting, and every way a file can be damaged."""

from __future__ import annotations

import pytest

import json
import struct
import zlib

from conftest import REPO
from sedic_kit.container import FORMAT_VERSION, MAGIC, PluginRef, SedicFile, pack, put_bytes, put_plugin, put_varint, unpack
from sedic_kit.plugin_ids import BUILTIN_IDS, builtin_id
from sedic_kit.plugins import get_registry
from sedic_kit.plugin_options import instantiate
from sedic_kit.profiles import available_profiles, load_profile
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


def test_framing_is_14_bytes_for_kodak_sized_sections() -> None:
    _, bits = pack(sample())
    # magic 2 + version 1 + size 4 + lengths 2+1 (the mask section runs to the CRC) + CRC 4
    assert bits["framing"] == 14 * 8


def builtin_defaults() -> dict[Role, PluginRef]:
    return {
        Role.reference_codec: PluginRef("avif", 3),
        Role.text_coder: PluginRef("lm", 1),
        Role.mask_coder: PluginRef("cabac", 2),
        Role.restorer: PluginRef("upsample", 1),
    }


def test_built_in_plugins_with_default_parameters_cost_one_byte_each() -> None:
    f = sample(plugins=builtin_defaults())
    data, bits = pack(f)
    assert bits["config"] == 4 * 8
    assert unpack(data) == f


def test_parameters_are_typed_and_compact() -> None:
    refs = builtin_defaults()
    refs[Role.restorer] = PluginRef("orag", 1, {"seed": 7, "cfg_scale": 7.25, "eta": 0.1, "negative_prompt": "x", "guidance_threshold": -1, "strength": 1})
    refs[Role.mask_coder] = PluginRef("cabac", 2, {"scale": 4})
    f = sample(plugins=refs)
    data, bits = pack(f)
    # avif, lm: 1 each; cabac: id, count, scale 2; orag: id, count, seed 2, cfg_scale 5 (float32),
    # eta 9 (float64), prompt 3, threshold 2, strength 2 (an int, as given)
    assert bits["config"] == 8 * (1 + 1 + (1 + 1 + 2) + (1 + 1 + 2 + 5 + 9 + 3 + 2 + 2))
    back = unpack(data).plugins
    assert back == refs and type(back[Role.restorer].params["cfg_scale"]) is float
    types = {k: type(v) for k, v in back[Role.restorer].params.items()}
    assert types == {"seed": int, "cfg_scale": float, "eta": float, "negative_prompt": str, "guidance_threshold": int, "strength": int}


def test_plugins_without_a_numeric_id_are_written_by_name() -> None:
    refs = builtin_defaults()
    refs[Role.text_coder] = PluginRef("my-coder", 3, {"alpha": None, "fast": True, "big": 2.0**200, "n": -5})
    refs[Role.reference_codec] = PluginRef("avif", 9)  # a version the table does not know yet
    f = sample(plugins=refs)
    assert unpack(pack(f)[0]) == f


def test_version_1_files_still_decode() -> None:
    """A format-1 file as sedic-kit 0.1 wrote it (docs/format.md, version 1)."""
    out = bytearray(MAGIC)
    for value in (1, 767, 511):
        put_varint(out, value)
    for name, version, params in (("avif", 2, {}), ("lm", 1, {}), ("cabac", 2, {"scale": 4}), ("upsample", 1, {"filter": "bicubic"})):
        put_bytes(out, name.encode())
        put_varint(out, version)
        put_bytes(out, json.dumps(params, separators=(",", ":")).encode() if params else b"")
    for body in (b"R" * 300, b"T" * 20, b"M" * 5, b"hint", b"\x01\x02"):
        put_bytes(out, body)
    out += struct.pack(">I", zlib.crc32(out))
    f = unpack(bytes(out))
    assert (f.version, f.width, f.height, f.reference, f.text, f.masks, f.extras) == (1, 768, 512, b"R" * 300, b"T" * 20, b"M" * 5, {"hint": b"\x01\x02"})
    assert f.plugins[Role.mask_coder] == PluginRef("cabac", 2, {"scale": 4})
    assert f.plugins[Role.restorer] == PluginRef("upsample", 1, {"filter": "bicubic"})


def test_an_unknown_built_in_id_asks_for_an_upgrade() -> None:
    data = bytearray(pack(sample(plugins=builtin_defaults()))[0][:-4])
    data[7] = 60 << 1  # the reference codec's id byte (after magic, version, width and height)
    data += struct.pack(">I", zlib.crc32(data))
    with pytest.raises(FormatError, match="needs reference_codec #60, a built-in plugin this sedic-kit does not know; upgrade"):
        unpack(bytes(data))


def test_config_records_ids_versions_and_params() -> None:
    f = unpack(pack(sample())[0])
    assert f.plugins[Role.restorer] == PluginRef("upsample", 2, {"filter": "bicubic", "seed": 7})


def test_unknown_version_is_named() -> None:
    data = bytearray(pack(sample())[0][:-4])
    data[len(MAGIC)] = FORMAT_VERSION + 6
    data += struct.pack(">I", zlib.crc32(data))
    with pytest.raises(FormatError, match=r"unsupported \.sedic format version 8 \(this sedic-kit reads versions 1, 2\)"):
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


def test_every_built_in_decoder_plugin_version_has_a_numeric_id() -> None:
    registry = get_registry()
    for role in DECODER_ROLES:
        for name in registry.names(role):
            cls = registry.get(role, name)
            number = builtin_id(role, name, cls.version)
            assert number is not None, f"{role.value} '{name}' v{cls.version}: add an id to sedic_kit/plugin_ids.py and docs/format.md"
            assert set(BUILTIN_IDS[role][number].params) == set(cls.decode_params), f"{name}: decode_params changed without a version bump"
            assert f"{number} `{name}` v{cls.version}" in (REPO / "docs" / "format.md").read_text()


@pytest.mark.parametrize("name", sorted(available_profiles()))
def test_shipped_profiles_cost_one_config_byte_per_decoder_plugin_with_defaults(name: str) -> None:
    profile, registry = load_profile(name), get_registry()
    for role in DECODER_ROLES:
        cls = registry.get(role, profile.roles[role].plugin)
        params = instantiate(cls, profile.roles[role].options).decode_config()
        out = bytearray()
        put_plugin(out, role, PluginRef(cls.name, cls.version, params))
        assert len(out) == 1 or params, f"{name}: {role.value} '{cls.name}' with default decode parameters costs {len(out)} bytes"
