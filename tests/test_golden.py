"""Frozen bitstreams: golden files decode as recorded, coders write them byte for byte, and every
built-in decoder plugin version has one (docs/format.md, "Compatibility promise")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO
from golden_cases import CASES, EXPECTED, FORMAT_V1, GOLDEN, NOT_GOLDEN, Case, codec, outcome, registry, write_input
from sedic_kit.container import FORMAT_VERSION, READ_VERSIONS, unpack
from sedic_kit.errors import FormatError
from sedic_kit.plugins import Registry
from sedic_kit.roles import DECODER_ROLES, Role

REGENERATE = "run `python tests/golden_cases.py` to add the golden file of a new version"


@pytest.fixture(scope="module")
def reg() -> Registry:
    return registry()


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[str, object]]:
    return json.loads(EXPECTED.read_text())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_input(tmp_path_factory.mktemp("golden"))


def usable(case: Case, reg: Registry) -> None:
    missing = reg.get(case.role, case.plugin).missing_requirements()
    if missing:
        pytest.skip(f"{case.plugin} needs {', '.join(missing)}")


def frozen_mismatch(case: Case, reg: Registry, source: Path) -> str | None:
    """Why today's encoder output differs from the golden file (None: byte for byte the same)."""
    golden = (GOLDEN / f"{case.name}.sedic").read_bytes()
    data = codec(case, reg).encode(source).data
    if data == golden:
        return None
    return (
        f"{case.role.value} '{case.plugin}' v{case.version} now writes {len(data)} bytes, the golden file has {len(golden)} "
        f"(differing from byte {next((i for i, (a, b) in enumerate(zip(data, golden)) if a != b), min(len(data), len(golden)))}): "
        f"bump its version and {REGENERATE}"
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_file_decodes_as_recorded(case: Case, reg: Registry, expected: dict) -> None:
    usable(case, reg)
    data = (GOLDEN / f"{case.name}.sedic").read_bytes()
    installed = reg.get(case.role, case.plugin).version
    decoder = codec(None, reg)  # the file names its plugins; the local profile does not matter
    if installed != case.version:  # an old version: a clear error, never a different image
        with pytest.raises(FormatError, match=f"written by {case.role.value} '{case.plugin}' v{case.version}; the installed plugin is v{installed}"):
            decoder.decode(data)
        return
    assert unpack(data).plugins[case.role].name == case.plugin
    assert outcome(decoder.decode_detailed(data)) == expected[case.name]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_coders_write_the_golden_file_byte_for_byte(case: Case, reg: Registry, source: Path) -> None:
    usable(case, reg)
    if reg.get(case.role, case.plugin).version != case.version:
        pytest.skip("an older version, kept for its decoding error")
    mismatch = frozen_mismatch(case, reg, source)
    assert mismatch is None, mismatch


def test_every_built_in_decoder_plugin_version_has_a_golden_file(reg: Registry) -> None:
    covered = {(c.role, c.plugin, c.version) for c in CASES}
    for role in DECODER_ROLES:
        for name in reg.names(role):
            if reg.sources[reg.owner[(role, name)]].origin != "built-in" or (role, name) in NOT_GOLDEN:
                continue
            version = reg.get(role, name).version
            assert (role, name, version) in covered, f"{role.value} '{name}' v{version} has no golden case: add one to CASES and {REGENERATE}"
    for case in CASES:
        assert (GOLDEN / f"{case.name}.sedic").is_file(), f"{case.name}: {REGENERATE}"


def test_a_changed_coder_output_without_a_version_bump_fails(reg: Registry, source: Path) -> None:
    lm = reg.get(Role.text_coder, "lm")

    class OneByteOff(lm):  # type: ignore[valid-type,misc]
        def encode(self, texts: list[str]) -> bytes:
            data = bytearray(super().encode(texts))
            data[-1] ^= 1
            return bytes(data)

    private = registry()
    private.classes[Role.text_coder]["lm"] = OneByteOff
    case = Case(Role.text_coder, "lm", 1)
    assert frozen_mismatch(case, reg, source) is None
    assert "text_coder 'lm' v1 now writes" in (frozen_mismatch(case, private, source) or "")


def test_format_1_file_decodes_as_recorded(reg: Registry, expected: dict) -> None:
    data = (GOLDEN / f"{FORMAT_V1}.sedic").read_bytes()
    assert unpack(data).version == 1
    assert outcome(codec(None, reg).decode_detailed(data)) == expected[FORMAT_V1]


def test_the_compatibility_promise_is_documented_and_kept() -> None:
    spec = (REPO / "docs" / "format.md").read_text()
    assert spec.startswith(f"# The `.sedic` file format, version {FORMAT_VERSION}\n")
    promise = re.search(r"\*\*writes\*\* format version (\d+) and \*\*reads\*\* format versions ([\d, and]+)", spec)
    assert promise, "docs/format.md states which versions a release writes and reads"
    assert int(promise.group(1)) == FORMAT_VERSION
    assert tuple(int(v) for v in re.findall(r"\d+", promise.group(2))) == READ_VERSIONS
    versions = {unpack(path.read_bytes()).version for path in GOLDEN.glob("*.sedic")}
    assert versions == set(READ_VERSIONS), "a golden file for every readable format version"
