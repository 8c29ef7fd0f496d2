"""Every install command an error message or the docs print names a real extra and pins torch
where the extra pulls it (an unpinned torch pulls a multi-GB CUDA build)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO
from sedic_kit.eval.metrics import ClipSIM, MetricUnavailable
from sedic_kit.install import CHECKOUT, COMPRESSAI, OWN_ENVIRONMENT, TORCH_PIN, VISION_PINS, hint_for, install_hint
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


def pip_installs(hint: str) -> list[list[str]]:
    """The arguments of each ``pip install`` in a hint (a shell line of ``&&``-joined commands)."""
    hint = hint.removesuffix(CHECKOUT)
    commands: list[list[str]] = [[]]
    for word in shlex.split(hint):
        commands.append([]) if word == "&&" else commands[-1].append(word)
    installs = []
    for words in commands:
        while words and re.fullmatch(r"[A-Z0-9_]+=\S*", words[0]):  # SAM2_BUILD_CUDA=0 pip install ...
            words = words[1:]
        if words[:2] == ["pip", "install"]:
            installs.append(words[2:])
        else:
            assert words[:3] == ["python3", "-m", "venv"] or words[0] == ".", f"{hint}: {words}"
    return installs


def sedic_kit_extras(args: list[str]) -> set[str] | None:
    """The extras of the sedic-kit target among pip install arguments (a path or ``.`` with [extras])."""
    for arg in args:
        match = re.fullmatch(r"(.+)\[([a-z0-9,-]+)\]", arg)
        if match:
            assert match.group(1) == "." or Path(match.group(1)).exists(), arg
            return set(match.group(2).split(","))
    return None


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_every_extra_has_a_hint_that_works_as_printed(extra: str) -> None:
    hint = install_hint(extra)
    assert "'sedic-kit[" not in hint, f"sedic-kit is on no index: {hint}"
    installs = pip_installs(hint)
    targets = [sedic_kit_extras(args) for args in installs]
    extras = next(t for t in targets if t is not None)
    assert extra in extras and extras <= set(EXTRAS), hint
    pins = {a for args in installs for a in args if "==" in a}
    if extra in OWN_ENVIRONMENT:
        assert hint.startswith(f"python3 -m venv {OWN_ENVIRONMENT[extra]} && . {OWN_ENVIRONMENT[extra]}/bin/activate && ")
        assert TORCH_PIN not in pins
        assert (set(VISION_PINS.split()) <= pins) == (extra != "vllm"), hint  # vllm brings its own CUDA torch
    else:
        assert (TORCH_PIN in pins) == any(pulls_torch(e) for e in extras), hint
    if extra in ("compressai", "vllm"):
        assert hint.endswith(f"&& pip install --no-deps {COMPRESSAI}")
    assert all(args.count("-e") <= 1 for args in installs)


def test_this_checkout_is_what_the_hints_install() -> None:
    """The tests run in an editable install of this checkout (README): the hint names it."""
    assert install_hint("openai") == f"pip install -e {shlex.quote(f'{REPO}[openai]')}"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ({"url": "file:///opt/my%20sedic", "dir_info": {"editable": True}}, "pip install -e '/opt/my sedic[openai]'"),
        ({"url": "file:///opt/my%20sedic", "dir_info": {}}, "pip install '/opt/my sedic[openai]'"),
        ({"url": "file:///opt/gone/sedic_kit-0.1.0-py3-none-any.whl", "archive_info": {}}, "pip install -e '.[openai]'" + CHECKOUT),
        ({"url": "https://github.com/o/sedic-kit", "vcs_info": {"vcs": "git", "commit_id": "0a1b"}},
         "pip install 'sedic-kit[openai] @ git+https://github.com/o/sedic-kit@0a1b'"),
        ({"url": "https://example.org/sedic_kit-0.1.0.tar.gz", "archive_info": {}},
         "pip install 'sedic-kit[openai] @ https://example.org/sedic_kit-0.1.0.tar.gz'"),
        (None, "pip install -e '.[openai]'" + CHECKOUT),
    ],
)
def test_the_hint_installs_from_where_sedic_kit_came_from(origin: dict | None, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if origin and "my%20sedic" in origin["url"]:
        (tmp_path / "my sedic").mkdir()
        origin = {**origin, "url": origin["url"].replace("/opt", tmp_path.as_uri().removeprefix("file://"))}
        expected = expected.replace("/opt", str(tmp_path))
    assert hint_for("openai", origin) == expected


def test_printed_hints_run_in_a_fresh_venv(tmp_path: Path) -> None:
    """A user who installed sedic-kit from a wheel runs the hint that installation prints, in a
    fresh venv (offline: --no-deps and --no-index through pip's environment); the editable
    form this checkout prints is resolved by pip too (--dry-run)."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=120)
    (wheel,) = wheels.glob("sedic_kit-*.whl")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    offline = {**os.environ, "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
               "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    offline.pop("PYTHONPATH", None)
    subprocess.run(["pip", "install", "-q", str(wheel)], check=True, capture_output=True, env=offline, timeout=120)
    # The installed copy's own hint module, run without importing the package (its deps are not installed).
    printed = subprocess.run(
        ["python", "-c", "import runpy, sys, sysconfig; m = runpy.run_path(sysconfig.get_paths()['purelib'] + '/sedic_kit/install.py'); "
         "print(m['install_hint']('openai'))"],
        check=True, capture_output=True, text=True, env=offline, cwd=tmp_path, timeout=60,
    ).stdout.strip()
    assert printed == f"pip install {shlex.quote(f'{wheel}[openai]')}"
    ran = subprocess.run(printed, shell=True, capture_output=True, text=True, env=offline, cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr
    listed = subprocess.run(["pip", "show", "sedic-kit"], capture_output=True, text=True, env=offline, timeout=60).stdout
    assert f"Location: {venv}" in listed and "Name: sedic-kit" in listed
    editable = install_hint("compressai").split(" && ")[0]  # pip install torch==2.13.0 -e '<this checkout>[compressai]'
    resolved = subprocess.run(
        [*shlex.split(editable.replace("pip", f"{sys.executable} -m pip", 1)), "--dry-run", "--no-deps", "--no-build-isolation", "--no-index", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert resolved.returncode == 0, resolved.stderr


def test_every_plugin_names_an_existing_extra() -> None:
    registry = get_registry()
    extras = {cls.extra for role in Role for cls in registry.classes[role].values() if cls.extra}
    assert extras and extras <= set(EXTRAS)


SOURCES = sorted(
    p
    for p in [*(REPO / "sedic_kit").rglob("*.py"), *(REPO / "plugins").rglob("*.py"), *(REPO / "tests").rglob("*.py"),
              *(REPO / "examples").rglob("*.md"), REPO / "README.md", REPO / "CONTRIBUTING.md"]
    if p.name not in ("install.py", "test_install_hints.py")  # the one source of hints, and its tests
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_literal_hint_contradicts_the_readme(path) -> None:  # type: ignore[no-untyped-def]
    text = path.read_text()
    for match in re.finditer(r"pip install[^\n`\"]*?(?<![/\w.-])sedic-kit\[[^\n`\"]*", text):
        assert " @ " in match.group(0), f"{path}: {match.group(0)} (sedic-kit is on no index: install it from a checkout, /path/to/sedic-kit[x])"
    for match in re.finditer(r"""pip install[^\n`"]*?['"]?\.\[([a-z0-9,-]+)\]""", text):  # editable installs: -e ".[x]"
        extras = match.group(1).split(",")
        assert set(extras) <= set(EXTRAS), f"{path}: {match.group(0)}"
        if any(pulls_torch(e) for e in extras) and not set(OWN_ENVIRONMENT) & set(extras):  # those pin their own torch
            assert TORCH_PIN in match.group(0), f"{path}: {match.group(0)}"


def test_clipsim_hint_fetches_the_clip_model() -> None:
    with pytest.raises(MetricUnavailable, match="`hf download example-org/no-such-clip`"):
        ClipSIM("example-org/no-such-clip").load()
