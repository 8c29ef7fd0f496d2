"""Plugin discovery through real installed distributions (entry points), filters and failures."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import CONTRACT_DISTRIBUTIONS, CONTRACT_ENV, REPO

ROLES = ["describer", "grounder", "segmenter", "reference_codec", "text_coder", "mask_coder", "restorer"]


def plugins_json(pythonpath: Path | None = None, **env: str | None) -> dict:
    """``sedic-kit plugins --json`` in a subprocess; an env value of None unsets the variable."""
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    if pythonpath is not None:
        full["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run(
        [sys.executable, "-m", "sedic_kit", "plugins", "--json"], capture_output=True, text=True, env=full, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return {"stderr": proc.stderr, **json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed (a real wheel build) plus a broken distribution."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(REPO / "examples" / "sedic-exif-describer")],
        check=True, capture_output=True, timeout=300,
    )
    dist = target / "sedic_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sedic-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sedic_kit]\nbroken = sedic_broken_plugin\n")
    (target / "sedic_broken_plugin.py").write_text("raise ImportError('needs libfoo 3')\n")
    # A plugin that loads but whose library, although installed, fails to import.
    dist = target / "sedic_halfway-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sedic-halfway\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sedic_kit]\nhalfway = sedic_halfway_plugin\n")
    (target / "sedic_halfway_lib.py").write_text("raise RuntimeError('built for another torch')\n")
    (target / "sedic_halfway_plugin.py").write_text(
        "from sedic_kit.hookspecs import hookimpl\n"
        "from sedic_kit.roles import Describer\n\n\n"
        "class Halfway(Describer):\n"
        "    name = 'halfway'\n"
        "    requires = ('sedic_halfway_lib',)\n\n"
        "    def describe(self, source):\n"
        "        raise NotImplementedError\n\n\n"
        "@hookimpl\n"
        "def register_describers(register):\n"
        "    register(Halfway)\n"
    )
    return target


def test_builtins_cover_every_role() -> None:
    data = plugins_json()
    roles = {p["role"] for p in data["plugins"] if p["origin"] == "built-in"}
    assert roles == set(ROLES)
    assert all(p["distribution"] == "sedic-kit" for p in data["plugins"])


def test_installed_example_is_listed_and_broken_one_reported(site: Path) -> None:
    data = plugins_json(site, SEDIC_LOAD_PLUGINS=None)
    exif = [p for p in data["plugins"] if p["name"] == "exif"]
    assert exif == [
        {
            "role": "describer", "name": "exif", "module": "exif", "distribution": "sedic-exif-describer",
            "version": "0.1.0", "origin": "third-party", "available": True, "missing": [], "problem": None, "extra": None,
        }
    ]
    (halfway,) = [p for p in data["plugins"] if p["name"] == "halfway"]
    assert not halfway["available"] and halfway["missing"] == []
    assert halfway["problem"] == "import sedic_halfway_lib fails: RuntimeError: built for another torch"
    assert data["errors"] == [{"module": "broken", "distribution": "sedic-broken", "error": "ImportError: needs libfoo 3"}]
    assert "plugin broken (sedic-broken) failed to load: ImportError: needs libfoo 3" in data["stderr"]


def test_load_plugins_env_limits_third_party(site: Path) -> None:
    only = plugins_json(site, SEDIC_LOAD_PLUGINS="sedic-exif-describer")
    assert any(p["name"] == "exif" for p in only["plugins"]) and only["errors"] == []
    none = plugins_json(site, SEDIC_LOAD_PLUGINS="")
    assert not any(p["origin"] == "third-party" for p in none["plugins"]) and none["errors"] == []
    assert {p["role"] for p in none["plugins"]} == set(ROLES)


@pytest.mark.skipif(bool(CONTRACT_DISTRIBUTIONS), reason="SEDIC_CONTRACT_PLUGINS asks the suite to load third-party plugins")
def test_the_test_suite_ignores_installed_third_party_plugins(site: Path) -> None:
    """conftest sets SEDIC_LOAD_PLUGINS: an installed plugin (as CONTRIBUTING tells users to) changes nothing."""
    assert os.environ["SEDIC_LOAD_PLUGINS"] == ""
    data = plugins_json(site)
    assert data["errors"] == [] and all(p["origin"] == "built-in" for p in data["plugins"])


def test_example_plugin_runs_the_lite_pipeline_from_the_cli(site: Path, small_image: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(site), "SEDIC_LOAD_PLUGINS": "sedic-exif-describer"}
    proc = subprocess.run(
        [sys.executable, "-m", "sedic_kit", "run", str(small_image), "--out", str(tmp_path / "o"),
         "--set", "describer.plugin=exif", "--set", "describer.fallback=a yellow disc"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "o" / "results.json").read_text())
    assert report["images"][0]["bits"]["text"] > 0 and report["profile"]["describer"]["plugin"] == "exif"


def contract_run(site: Path, tmp_path: Path, command: str, **env: str | None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """``command`` (a shell line starting ``pytest``) in the checkout with ``site`` on the path;
    the outcome of each test it ran, from its JUnit XML."""
    junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*')))}.xml"
    full = {**os.environ, "PYTHONPATH": str(site), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTEST_ADDOPTS": f"-p no:cacheprovider --junitxml={junit}", **env}
    proc = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in full.items() if v is not None})
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            outcomes[case.get("name", "")] = kind
    return proc, outcomes


def test_the_contract_suite_checks_an_installed_third_party_plugin_as_contributing_says(site: Path, tmp_path: Path) -> None:
    guide = (REPO / "CONTRIBUTING.md").read_text()
    command = next(line.split("  #")[0].strip() for line in guide.splitlines() if line.startswith(f"{CONTRACT_ENV}=sedic-exif-describer pytest"))
    proc, outcomes = contract_run(site, tmp_path, command, **{CONTRACT_ENV: None})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert outcomes == {"test_plugin_keeps_its_role_contract[describer-exif]": "passed"}
    # Without the variable the suite loads no third-party plugin: `-k exif` selects nothing (exit 5).
    plain, outcomes = contract_run(site, tmp_path, command.removeprefix(f"{CONTRACT_ENV}=sedic-exif-describer "), **{CONTRACT_ENV: None})
    assert plain.returncode == 5 and outcomes == {}


@pytest.mark.parametrize(
    ("named", "message"),
    [("sedic-not-installed", "sedic-not-installed is not installed in this environment"),
     ("sedic-broken", "sedic-broken: plugin module broken failed: ImportError: needs libfoo 3"),
     ("pytest", "pytest has no [project.entry-points.sedic_kit]: no plugins to check")],
)
def test_a_contract_distribution_that_cannot_be_checked_stops_the_run_first(site: Path, tmp_path: Path, named: str, message: str) -> None:
    proc, outcomes = contract_run(site, tmp_path, "pytest tests/test_contracts.py -k exif", **{CONTRACT_ENV: named})
    assert proc.returncode == 4 and outcomes == {}, proc.stdout + proc.stderr
    assert f"ERROR: {CONTRACT_ENV}: {message}" in proc.stderr


def plugins_output(site: Path, tty: bool) -> str:
    """``sedic-kit plugins`` as a user sees it: on an 80-column pseudo-terminal, or piped."""
    env = {**os.environ, "PYTHONPATH": str(site), "SEDIC_LOAD_PLUGINS": "sedic-exif-describer,sedic-halfway"}
    env.pop("COLUMNS", None)
    command = [sys.executable, "-m", "sedic_kit", "plugins"]
    if not tty:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(command, stdout=child_fd, stderr=child_fd, stdin=child_fd, env={**env, "TERM": "xterm"})
    os.close(child_fd)
    chunks = []
    while True:
        if not select.select([main_fd], [], [], 300)[0]:
            proc.kill()
            raise AssertionError("sedic-kit plugins printed nothing for 300 s")
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    assert proc.wait(timeout=300) == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()).replace("\r\n", "\n")


@pytest.fixture(scope="module")
def expected_cells(site: Path) -> list[list[str]]:
    """Each plugin's row as ``plugins --json`` describes it."""
    data = plugins_json(site, SEDIC_LOAD_PLUGINS="sedic-exif-describer,sedic-halfway")
    return [
        [*(str(p[k] or "-") for k in ("role", "name", "distribution", "version", "origin")),
         "ok" if p["available"] else p["problem"] + (f" ([{p['extra']}])" if p["extra"] and p["missing"] else "")]
        for p in data["plugins"]
    ]


def test_plugins_table_piped_is_one_plain_line_per_plugin(site: Path, expected_cells: list[list[str]]) -> None:
    lines = plugins_output(site, tty=False).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["role", "name", "distribution", "version", "origin", "status"]
    rows = [re.split(r"\s{2,}", line.rstrip(), maxsplit=5) for line in lines[1:]]
    assert rows == expected_cells
    assert max(map(len, lines)) > 80  # long statuses are not cut to fit a terminal that is not there


def test_plugins_table_at_80_columns_cuts_nothing(site: Path, expected_cells: list[list[str]]) -> None:
    screen = plugins_output(site, tty=True)
    lines = screen.splitlines()
    assert "…" not in screen and max(len(line.rstrip()) for line in lines) <= 80
    cells = expected_cells
    assert len(cells) > 30 and any(len(c[5]) > 40 for c in cells)
    for role, name, dist, version, origin, status in cells:
        (at,) = [i for i, line in enumerate(lines) if line.split()[:4] == [name, dist, version, origin]]
        assert f" {role}" in "\n".join(lines[:at]), role
        # the status: on the row's line and the lines under it, in the last column
        column = lines[at].index(f" {origin} ") + len(origin) + 2
        wrapped = [lines[at][column:].strip()]
        for line in lines[at + 1 :]:
            if line[:column].strip():
                break
            wrapped.append(line[column:].strip())
        assert " ".join(w for w in wrapped if w) == status or "".join(wrapped) == status.replace(" ", ""), (name, wrapped)
