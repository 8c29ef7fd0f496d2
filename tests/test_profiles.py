"""Profiles: inheritance, overrides, user profiles, and one-line errors naming file and key."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from sedic_kit import ProfileError, load_profile
from sedic_kit.install import install_hint
from sedic_kit.profiles import available_profiles
from sedic_kit.roles import Role


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_shipped_profiles_exist() -> None:
    assert {"lite", "offline", "gpt4v"} <= set(available_profiles())
    lite = load_profile("lite")
    assert lite.roles[Role.restorer].plugin == "upsample"
    lite.build()


def test_extends_merges_and_replaces_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mine",
        'extends = "lite"\ndescription = "mine"\n[reference_codec]\nquality = 30\n[restorer]\nplugin = "upsample"\nfilter = "bicubic"\n',
    )
    prof = load_profile(path)
    assert prof.roles[Role.reference_codec].plugin == "avif"
    assert prof.roles[Role.reference_codec].options == {"scale": 2.0, "quality": 30, "speed": 2}
    assert prof.roles[Role.restorer].options == {"filter": "bicubic"}
    write(tmp_path, "other", 'extends = "lite"\n[reference_codec]\nplugin = "webp"\n')
    assert load_profile(tmp_path / "other.toml").roles[Role.reference_codec].options == {}


def test_user_profiles_by_name_from_the_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "mylite", 'extends = "lite"\ndescription = "user profile"\n')
    monkeypatch.setenv("SEDIC_PROFILE_PATH", str(tmp_path))
    assert load_profile("mylite").description == "user profile"
    assert "mylite" in available_profiles()


def test_set_overrides_parse_toml_values() -> None:
    prof = load_profile("lite", ["reference_codec.quality=12", "reference_codec.scale=3", "describer.path=/x/y.json"])
    assert prof.roles[Role.reference_codec].options["quality"] == 12
    assert prof.roles[Role.describer].options["path"] == "/x/y.json"
    swapped = load_profile("lite", ["reference_codec.plugin=webp"])
    assert swapped.roles[Role.reference_codec].options == {}


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('extends = "lite"\n[restorer]\nplugin = "nope"\n', r"mine\.toml: restorer\.plugin: unknown restorer 'nope' \(available: (orag, )?upsample"),
        ('extends = "lite"\n[restorer]\nstrength = 3\n', r"mine\.toml: restorer\.strength: unknown key for restorer 'upsample' \(valid: plugin, filter\)"),
        ('extends = "lite"\n[reference_codec]\nquality = "best"\n', r"mine\.toml: reference_codec\.quality: .*integer.*'best'"),
        ('extends = "lite"\n[reference_codec]\nquality = 101\n', r"reference_codec\.quality: .*less than or equal to 100"),
        ('extends = "lite"\ncolour = 1\n', r"mine\.toml: colour: unknown key \(valid: description, extends, describer"),
        ('extends = "nowhere"\n', r"mine\.toml: extends: unknown profile 'nowhere' \(available: .*lite"),
        ('[restorer]\nplugin = "upsample"\n', r"mine\.toml: missing role tables: describer"),
        ("this is = not toml [", r"mine\.toml: invalid TOML"),
    ],
)
def test_errors_name_file_key_and_choices(tmp_path: Path, text: str, pattern: str) -> None:
    path = write(tmp_path, "mine", text)
    with pytest.raises(ProfileError, match=pattern):
        load_profile(path).build()


def test_override_errors_point_at_set() -> None:
    with pytest.raises(ProfileError, match=r"--set: reference_codec\.quality"):
        load_profile("lite", ["reference_codec.quality=abc"]).build()
    with pytest.raises(ProfileError, match="unknown role 'codec'"):
        load_profile("lite", ["codec.quality=1"])
    with pytest.raises(ProfileError, match="expected ROLE.KEY=VALUE"):
        load_profile("lite", ["reference_codec.quality"])


def test_extends_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a", 'extends = "b"\n')
    write(tmp_path, "b", 'extends = "a"\n')
    monkeypatch.setenv("SEDIC_PROFILE_PATH", str(tmp_path))
    with pytest.raises(ProfileError, match="cycle"):
        load_profile("a")


def test_offline_profile_names_the_missing_extra() -> None:
    """vllm needs a GPU and its own environment; without it the profile says what to install."""
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(ProfileError, match=r"offline\.toml: describer\.plugin: describer 'vllm' needs vllm which is not installed: ") as info:
        load_profile("offline").build()
    assert str(info.value).endswith(f": {install_hint('vllm')}")


def test_profiles_check_lists_every_problem_then_exits_1(tmp_path: Path) -> None:
    """In a fresh process, on a real file: every problem of every kind, one line each, not only the first."""
    path = write(tmp_path, "bad", """extends = "lite"
colour = "red"
[reference_codec]
quality = "high"
frobnicate = 1
[restorer]
plugin = "nope"
[rate]
bogus = 1
[mask_coder]
plugin = 3
""")
    proc = subprocess.run(
        [sys.executable, "-m", "sedic_kit", "profiles", "check", str(path), "--set", "describer.zzz=1", "--set", "codec.x=1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr == "Error: profile bad: 8 problems (listed above)\n", proc.stderr
    problems = proc.stdout.splitlines()
    assert all(line.startswith("problem  ") for line in problems) and len(problems) == 8
    for wanted in [
        f"{path}: colour: unknown key",
        f"{path}: mask_coder.plugin: expected a string, got 3",
        "--set codec.x=1: unknown role 'codec'",
        f"{path}: rate.bogus: unknown key",
        "--set: describer.zzz: unknown key for describer 'sidecar'",
        f"{path}: reference_codec.quality: Input should be a valid integer",
        f"{path}: reference_codec.frobnicate: unknown key for reference_codec 'avif'",
        f"{path}: restorer.plugin: unknown restorer 'nope'",
    ]:
        assert sum(wanted in line for line in problems) == 1, wanted
    # Everywhere else the first problem is the one-line error it always was.
    with pytest.raises(ProfileError, match="colour: unknown key"):
        load_profile(path)


def test_profiles_check_passes_a_good_profile_and_names_a_missing_role(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "sedic_kit", "profiles", "check", "lite"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout == "profile lite: ok\n" and ok.stderr == ""
    path = write(tmp_path, "half", '[describer]\nplugin = "sidecar"\nmax_objects = "x"\n[restorer]\nplugin = 1\n')
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", "profiles", "check", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "3 problems" in proc.stderr
    assert proc.stdout.splitlines() == [
        f"problem  {path}: restorer.plugin: expected a string, got 1",
        f"problem  {path}: missing role tables: grounder, segmenter, reference_codec, text_coder, mask_coder",
        f"problem  {path}: describer.max_objects: Input should be a valid integer, unable to parse string as an integer (got 'x')",
    ]
