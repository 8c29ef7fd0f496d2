"""Profiles: inheritance, overrides, user profiles, and one-line errors naming file and key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sedic_kit import ProfileError, load_profile
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
    with pytest.raises(ProfileError, match=r"offline\.toml: describer\.plugin: describer 'vllm' needs vllm which is not installed: pip install 'sedic-kit\[vllm\]'"):
        load_profile("offline").build()
