"""Frozen bitstreams: golden files decode as recorded, coders write them byte for byte, and every
built-in decoder plugin version has one (docs/format.md, "Compatibility promise")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO
from golden_cases import CASES, EXPECTED, FORMAT_V1, GOLDEN, NOT_GOLDEN, Case, codec, file_name, outcome, registry, write_input
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


FILES = sorted(json.loads(EXPECTED.read_text()))


def skip_unless_usable(reg: Registry, role: Role, name: str) -> None:
    missing = reg.get(role, name).missing_requirements()
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)}")


def current_file(case: Case, reg: Registry) -> Path:
    path = GOLDEN / f"{file_name(case, codec(case, reg))}.sedic"
    assert path.is_file(), f"{case.name}: no golden file for today's plugin versions; {REGENERATE}"
    return path


def frozen_mismatch(case: Case, reg: Registry, source: Path) -> str | None:
    """Why today's encoder output differs from the golden file (None: byte for byte the same)."""
    golden = current_file(case, registry()).read_bytes()
    data = codec(case, reg).encode(source).data
    if data == golden:
        return None
    first = next((i for i, (a, b) in enumerate(zip(data, golden)) if a != b), min(len(data), len(golden)))
    return (
        f"{case.role.value} '{case.plugin}' v{case.version} now writes {len(data)} bytes, the golden file has "
        f"{len(golden)} (first difference at byte {first}): bump its version and {REGENERATE}"
    )


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_golden_file_decodes_as_recorded(name: str, reg: Registry, expected: dict) -> None:
    """Files of today's plugin versions decode exactly as recorded; older ones fail naming the version."""
    data = (GOLDEN / f"{name}.sedic").read_bytes()
    refs = unpack(data).plugins
    for role in DECODER_ROLES:
        skip_unless_usable(reg, role, refs[role].name)
    decoder = codec(None, reg)  # the file names its plugins; the local profile does not matter
    stale = [(role, ref) for role, ref in refs.items() if reg.get(role, ref.name).version != ref.version]
    if stale:
        role, ref = stale[0]
        installed = reg.get(role, ref.name).version
        with pytest.raises(FormatError, match=f"written by {role.value} '{ref.name}' v{ref.version}; the installed plugin is v{installed}"):
            decoder.decode(data)
        return
    assert outcome(decoder.decode_detailed(data)) == expected[name]


CURRENT = [c for c in CASES if registry().get(c.role, c.plugin).version == c.version]
"""The cases of today's plugin versions (an older version's file is kept for its decoding error, tested above)."""


@pytest.mark.parametrize("case", CURRENT, ids=lambda c: c.name)
def test_coders_write_the_golden_file_byte_for_byte(case: Case, reg: Registry, source: Path) -> None:
    skip_unless_usable(reg, case.role, case.plugin)
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
        if reg.get(case.role, case.plugin).version == case.version:
            current_file(case, reg)


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


def test_the_compatibility_promise_is_documented_and_kept(reg: Registry) -> None:
    spec = (REPO / "docs" / "format.md").read_text()
    assert spec.startswith(f"# The `.sedic` file format, version {FORMAT_VERSION}\n")
    promise = re.search(r"\*\*writes\*\* format version (\d+) and \*\*reads\*\* format versions ([\d, and]+)", spec)
    assert promise, "docs/format.md states which versions a release writes and reads"
    assert int(promise.group(1)) == FORMAT_VERSION
    assert tuple(int(v) for v in re.findall(r"\d+", promise.group(2))) == READ_VERSIONS
    decodable = set()
    for name in FILES:
        f = unpack((GOLDEN / f"{name}.sedic").read_bytes())
        if all(reg.get(role, ref.name).version == ref.version for role, ref in f.plugins.items()):
            decodable.add(f.version)
    assert decodable == set(READ_VERSIONS), "a decodable golden file for every format version this release reads"
    assert any(name.startswith(FORMAT_V1) for name in FILES)
