"""The role contracts (tests/contracts.py) on every registered plugin, generated from the registry."""

from __future__ import annotations

import importlib
import inspect
import json
import tomllib
import re
from pathlib import Path

import pytest

from chat_server import ChatServer
from conftest import REPO
from contracts import check_plugin
from tiny_backends import TINY
from sedic_kit import hookimpl
from sedic_kit.errors import FormatError
from sedic_kit.plugins import Registry, get_registry
from sedic_kit.roles import ROLE_BASES, Plugin, Role, TextCoder

REGISTRY = get_registry()
CHAT_ANSWER = json.dumps({"objects": [{"name": "yellow disc", "details": "a round yellow disc"}], "caption": "a yellow disc on a gradient"})
PLUGINS = [(role, name) for role in Role for name in REGISTRY.names(role)]


@pytest.mark.parametrize(("role", "name"), PLUGINS, ids=[f"{r.value}-{n}" for r, n in PLUGINS])
def test_plugin_keeps_its_role_contract(role: Role, name: str, tmp_path: Path) -> None:
    if (role, name) == (Role.describer, "openai"):  # its service: the real local chat server of the tests
        with ChatServer([("ok", CHAT_ANSWER)]) as server:
            reason = check_plugin(REGISTRY, role, name, tmp_path, {"base_url": server.base_url, "timeout": 5})
        assert server.requests, "the openai describer never reached the server"
    else:
        reason = check_plugin(REGISTRY, role, name, tmp_path)
    if reason:
        pytest.skip(reason)


def test_every_tiny_backend_names_a_registered_plugin() -> None:
    assert set(TINY) <= {name for _, name in PLUGINS}, f"tests/tiny_backends.py: {sorted(set(TINY) - {n for _, n in PLUGINS})}"


class Reversed(TextCoder):
    """A third-party-style text coder with no tests of its own: JSON, reversed."""

    name = "reversed"

    def encode(self, texts: list[str]) -> bytes:
        return json.dumps(texts).encode()[::-1]

    def decode(self, data: bytes) -> list[str]:
        try:
            return self.parse(data)
        except ValueError as exc:
            raise FormatError(f"corrupt text section ({exc})") from None

    @staticmethod
    def parse(data: bytes) -> list[str]:
        texts = json.loads(data[::-1])
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("not a list of strings")
        return texts


class Lossy(Reversed):
    name = "lossy"

    def decode(self, data: bytes) -> list[str]:
        return [t.strip() for t in super().decode(data)]


class Fragile(Reversed):
    name = "fragile"

    def decode(self, data: bytes) -> list[str]:
        return self.parse(data)


class Forgetful(Reversed):
    """Comes back from ``release()`` with another 'model': its answers change."""

    name = "forgetful"
    releases = 0

    def release(self) -> None:
        self.releases += 1

    def encode(self, texts: list[str]) -> bytes:
        return super().encode(texts) + b" " * self.releases


def test_a_newly_registered_plugin_is_exercised_by_the_contract_suite(tmp_path: Path) -> None:
    registry = Registry()
    registry.load_entry_points()
    module = type("P", (), {"register_entropy_coders": staticmethod(hookimpl(lambda register: [register(c) for c in (Reversed, Lossy, Fragile, Forgetful)]))})()
    registry.add_module(module, "p")
    assert check_plugin(registry, Role.text_coder, "reversed", tmp_path) is None
    with pytest.raises(AssertionError, match="does not round-trip"):
        check_plugin(registry, Role.text_coder, "lossy", tmp_path)  # "\0\n\t" loses its whitespace
    with pytest.raises(AssertionError, match=r"raised (JSON|Unicode)DecodeError: .* \(must be FormatError\)"):
        check_plugin(registry, Role.text_coder, "fragile", tmp_path)
    with pytest.raises(AssertionError, match=r"forgetful: another answer after release\(\)"):
        check_plugin(registry, Role.text_coder, "forgetful", tmp_path)


ROLE_EXAMPLES = REPO / "examples" / "sedic-role-examples"


def test_the_role_example_plugins_keep_every_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installable examples (one plugin per role, no contract tests of their own) pass the suite."""
    monkeypatch.syspath_prepend(str(ROLE_EXAMPLES))
    entry_points = tomllib.loads((ROLE_EXAMPLES / "pyproject.toml").read_text())["project"]["entry-points"]["sedic_kit"]
    registry = Registry()
    registry.load_entry_points()
    checked = []
    for key, target in entry_points.items():
        source = registry.add_module(importlib.import_module(target), key)
        for role, name in source.registered:
            assert check_plugin(registry, role, name, tmp_path) is None
            checked.append(role)
    assert sorted(checked) == sorted(Role)


def signature(fn: object) -> str:
    """``name(param: type, ...) -> type`` as the role interface declares it."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = [
        f"{p.name}: {p.annotation}" + (f" = {p.default!r}" if p.default is not inspect.Parameter.empty else "")
        for p in sig.parameters.values()
        if p.name != "self"
    ]
    return f"{fn.__name__}({', '.join(params)}) -> {sig.return_annotation}"  # type: ignore[attr-defined]


def test_every_role_method_signature_is_documented_as_declared() -> None:
    guide = (REPO / "CONTRIBUTING.md").read_text()
    section = guide[guide.index("## Role methods") :]
    documented = {(cls, sig.replace("\\|", "|")) for cls, sig in re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", section, re.M)}
    declared = {
        (base.__name__, signature(getattr(base, name)))
        for base in (Plugin, *ROLE_BASES.values())
        for name, member in vars(base).items()
        if getattr(member, "__isabstractmethod__", False) or name in ("rate_ladder", "release", "decode_work")
    }
    assert documented == declared, f"CONTRIBUTING.md '## Role methods' differs from sedic_kit/roles.py: {sorted(documented ^ declared)}"
