"""Every install command an error message or the docs print names a real extra and pins torch
where the extra pulls it (an unpinned torch pulls a multi-GB CUDA build)."""

from __future__ import annotations

import re
import tomllib

import pytest

from conftest import REPO
from sedic_kit.eval.metrics import ClipSIM, MetricUnavailable
from sedic_kit.install import OWN_ENVIRONMENT, TORCH_PIN, install_hint
from sedic_kit.plugins import get_registry
from sedic_kit.roles import Role

EXTRAS: dict[str, list[str]] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def pulls_torch(extra: str) -> bool:
    """From pyproject itself, independent of the installed metadata the hints read."""
    for req in EXTRAS[extra]:
        name = re.match(r"[A-Za-z0-9_.\-]+(\[[^\]]*\])?", req).group(0).lower()  # type: ignore[union-attr]
        nested = re.fullmatch(r"sedic-kit\[(.+)\]", name)
        if name == "torch" or (nested and any(pulls_torch(e.strip()) for e in nested.group(1).split(","))):
            return True
    return False


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_every_extra_has_a_hint_that_works_as_printed(extra: str) -> None:
    hint = install_hint(extra)
    assert f"'sedic-kit[{extra}]'" in hint
    if extra in OWN_ENVIRONMENT:
        assert TORCH_PIN not in hint and "environment of its own" in hint
    else:
        assert (TORCH_PIN in hint) == pulls_torch(extra), hint
    if extra == "compressai":
        assert hint.endswith("&& pip install --no-deps compressai==1.2.8")


def test_every_plugin_names_an_existing_extra() -> None:
    registry = get_registry()
    extras = {cls.extra for role in Role for cls in registry.classes[role].values() if cls.extra}
    assert extras and extras <= set(EXTRAS)


HINT = re.compile(r"pip install[^\n`\"]*?sedic-kit\[([a-z0-9-]+)\][^\n`\"]*")
SOURCES = sorted(
    p
    for p in [*(REPO / "sedic_kit").rglob("*.py"), *(REPO / "plugins").rglob("*.py"), REPO / "README.md", REPO / "CONTRIBUTING.md"]
    if p.name != "install.py"  # the one source of hints, tested above
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_literal_hint_contradicts_the_readme(path) -> None:  # type: ignore[no-untyped-def]
    text = path.read_text()
    for match in HINT.finditer(text):
        extra = match.group(1)
        assert extra in EXTRAS, f"{path}: {match.group(0)}"
        if pulls_torch(extra) and extra not in OWN_ENVIRONMENT:
            assert TORCH_PIN in match.group(0), f"{path}: {match.group(0)}"
    for match in re.finditer(r"""pip install[^\n`"]*?['"]?\.\[([a-z0-9,-]+)\]""", text):  # editable installs: -e ".[x]"
        extras = match.group(1).split(",")
        assert set(extras) <= set(EXTRAS), f"{path}: {match.group(0)}"
        if any(pulls_torch(e) for e in extras) and not OWN_ENVIRONMENT & set(extras):  # those pin their own torch
            assert TORCH_PIN in match.group(0), f"{path}: {match.group(0)}"


def test_clipsim_hint_fetches_the_clip_model() -> None:
    with pytest.raises(MetricUnavailable, match="`hf download example-org/no-such-clip`"):
        ClipSIM("example-org/no-such-clip").load()
