"""Every hook is documented and exercised by the example plugins (examples/), run through the codec."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import typer
from PIL import Image, ImageFilter

from conftest import REPO
import sedic_kit
from sedic_kit import Codec, Role, SedicError, SourceImage, hookimpl, hookspecs, load_profile
from sedic_kit import plugins as plugins_module
from sedic_kit.cli import main
from sedic_kit.errors import FormatError
from sedic_kit.payload import Payload
from sedic_kit.plugins import Registry, get_registry
from sedic_kit.roles import Restorer

HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_"))


@pytest.fixture
def registry() -> Registry:
    """A private registry: what tests add to it is unknown to the installed plugins."""
    registry = Registry()
    registry.load_entry_points()
    return registry


def roundtrip(registry: Registry, image: Path, **swap: str) -> tuple[Codec, Image.Image]:
    profile = load_profile("lite", [f"{role}.plugin={name}" for role, name in swap.items()])
    codec = Codec(profile.build(registry), profile, registry=registry)
    result = codec.encode(image)
    return codec, codec.decode(result.data)


def test_every_hook_has_a_one_line_docstring_and_is_in_contributing() -> None:
    guide = (REPO / "CONTRIBUTING.md").read_text()
    assert HOOKS == [
        "register_commands",
        "register_describers",
        "register_entropy_coders",
        "register_grounders",
        "register_reference_codecs",
        "register_restorers",
        "register_segmenters",
    ]
    for name in HOOKS:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), name
        assert f"`{name}" in guide, f"{name} is not documented in CONTRIBUTING.md"


def test_every_hook_has_a_test() -> None:
    tests = {name for name, _ in inspect.getmembers(sys.modules[__name__], inspect.isfunction)}
    assert {f"test_hook_{h}" for h in HOOKS} <= tests


def test_hook_register_describers(registry: Registry, small_image: Path) -> None:
    sys.path.insert(0, str(REPO / "examples" / "sedic-exif-describer"))
    try:
        import sedic_exif_describer
    finally:
        sys.path.pop(0)
    registry.add_module(sedic_exif_describer)
    tagged = small_image.with_name("tagged.png")
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Description", "A yellow disc on a gradient")
    Image.open(small_image).save(tagged, pnginfo=info)
    codec, image = roundtrip(registry, tagged, describer="exif")
    assert codec.encode(tagged).payload.caption == "A yellow disc on a gradient"
    assert image.size == (96, 64)


ROLE_EXAMPLES = REPO / "examples" / "sedic-role-examples"


def example(module: str) -> ModuleType:
    """A module of the installable role examples (imported from the source tree)."""
    sys.path.insert(0, str(ROLE_EXAMPLES))
    try:
        return importlib.import_module(f"sedic_role_examples.{module}")
    finally:
        sys.path.pop(0)


def test_role_examples_package_registers_one_plugin_per_role(registry: Registry) -> None:
    entry_points = tomllib.loads((ROLE_EXAMPLES / "pyproject.toml").read_text())["project"]["entry-points"]["sedic_kit"]
    registered = {}
    for key, target in entry_points.items():
        source = registry.add_module(example(target.rsplit(".", 1)[1]), key)
        assert source.errors == [], source.errors
        registered.update(dict(source.registered))
    assert registered == {
        Role.describer: "csv",
        Role.grounder: "min-area",
        Role.segmenter: "ellipse",
        Role.reference_codec: "png",
        Role.text_coder: "lzma",
        Role.mask_coder: "bbox",
        Role.restorer: "sharpen",
    }
    guide = (REPO / "CONTRIBUTING.md").read_text()
    assert all(f"{target.rsplit('.', 1)[1]}.py" in guide for target in entry_points.values())


def test_csv_describer(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("csv_describer"))
    small_image.with_name("captions.csv").write_text(
        "image,caption,name,details,box\n"
        "small.png,A yellow disc,yellow disc,round and bright,40 12 76 46\n"
        "small.png,,gradient,smooth,\n"
        "other.png,not this one,x,y,\n"
    )
    codec, image = roundtrip(registry, small_image, describer="csv")
    payload = codec.encode(small_image).payload
    assert payload.caption == "A yellow disc" and [o.name for o in payload.objects] == ["yellow disc", "gradient"]
    assert payload.objects[0].box == (40, 12, 76, 46) and image.size == (96, 64)


def test_hook_register_grounders(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("area_grounder"))
    small_image.with_suffix(".json").write_text(
        '{"caption": "c", "objects": [{"name": "speck", "details": "x", "box": [1, 1, 3, 3]}, {"name": "scene", "details": "y"}]}'
    )
    codec, _ = roundtrip(registry, small_image, grounder="min-area")
    objects = codec.encode(small_image).payload.objects
    assert [(o.name, o.box) for o in objects] == [("scene", (0, 0, 96, 64))]  # no box: the whole frame


def test_hook_register_segmenters(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("ellipse_segmenter"))
    codec, _ = roundtrip(registry, small_image, segmenter="ellipse")
    mask = codec.encode(small_image).payload.objects[0].mask
    assert mask is not None and mask[29, 58] and not mask[12, 40]


def test_hook_register_reference_codecs(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("png_reference"))
    codec, image = roundtrip(registry, small_image, reference_codec="png")
    assert codec.decode_detailed(codec.encode(small_image).data).reference.size == (12, 8)
    assert image.size == (96, 64)
    codec4 = Codec.from_profile(load_profile("lite", ["reference_codec.plugin=png", "reference_codec.scale=4"]), registry=registry)
    assert codec.decode_detailed(codec4.encode(small_image).data).reference.size == (24, 16)  # scale is in the header
    result = codec.encode(small_image, target_bpp=1.0)
    assert result.bpp <= 1.0 and "reference scale=8" in result.notes[-1]  # scale=4 does not fit


def test_hook_register_entropy_coders(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("lzma_text"))
    registry.add_module(example("bbox_masks"))
    codec, _ = roundtrip(registry, small_image, text_coder="lzma", mask_coder="bbox")
    result = codec.encode(small_image)
    decoded = codec.decode_detailed(result.data).payload
    assert decoded.caption == result.payload.caption
    assert result.bits["masks"] == 8 * 8
    assert decoded.objects[0].mask is not None and decoded.objects[0].mask.shape == (64, 96)
    with pytest.raises(SedicError, match="expected 8"):
        codec.mask_coder.decode(b"\0" * 9, 1, 96, 64)


def test_hook_register_restorers(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("sharpen_restorer"))
    codec, image = roundtrip(registry, small_image, restorer="sharpen")
    reference = codec.decode_detailed(codec.encode(small_image).data).reference
    upsampled = reference.resize((96, 64), Image.Resampling.BICUBIC)
    expected = upsampled.filter(ImageFilter.UnsharpMask(radius=2, percent=80, threshold=2))
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    assert not np.array_equal(np.asarray(image), np.asarray(upsampled))


def test_a_private_registry_decodes_its_own_plugins(registry: Registry, small_image: Path) -> None:
    registry.add_module(example("lzma_text"))
    codec, _ = roundtrip(registry, small_image, text_coder="lzma")
    data = codec.encode(small_image).data
    assert "lzma" not in get_registry().names(Role.text_coder)
    assert codec.decode_detailed(data).payload.caption == codec.encode(small_image).payload.caption
    with pytest.raises(FormatError, match="needs text_coder 'lzma' v1, which is not installed"):
        Codec.from_profile("lite").decode(data)


def test_hook_register_commands(registry: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def register_commands(cli: typer.Typer) -> None:
        @cli.command("hello-test")
        def hello(name: str) -> None:
            """Say hello."""
            print(f"hello {name}")

    registry.add_module(SimpleNamespace(register_commands=hookimpl(register_commands)), "cmd-plugin")
    monkeypatch.setattr(plugins_module, "_registry", registry)
    assert main(["hello-test", "world"]) == 0
    assert "hello world" in capsys.readouterr().out


def test_bad_registrations_are_reported_not_fatal(registry: Registry) -> None:
    class NoName(Restorer):
        def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
            return reference

    sharpen = example("sharpen_restorer").SharpenRestorer
    bad = SimpleNamespace(
        register_restorers=hookimpl(lambda register: register(NoName)),
        register_grounders=hookimpl(lambda register: register(sharpen)),
    )
    source = registry.add_module(bad, "bad-plugin")
    assert len(source.errors) == 2
    assert any("has no name" in e for e in source.errors) and any("is not a Grounder subclass" in e for e in source.errors)
    assert sum("bad-plugin" in line for line in registry.errors()) == 2
    dup = registry.add_module(SimpleNamespace(register_restorers=hookimpl(lambda register: register(type("U", (sharpen,), {"name": "upsample"})))), "dup")
    assert dup.errors == ["restorer 'upsample' is already registered by upsample"]
    assert registry.get(Role.restorer, "upsample").__module__ == "sedic_plugins.restorers.upsample"


def test_sedic_kit_plugins_shows_every_load_error(registry: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    class NoName(Restorer):
        def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
            return reference

    registry.add_module(SimpleNamespace(register_restorers=hookimpl(lambda register: [register(NoName), register(int)])), "two-errors")
    monkeypatch.setattr(plugins_module, "_registry", registry)
    assert main(["plugins", "--json"]) == 0
    out = capsys.readouterr()
    errors = json.loads(out.out)["errors"]
    assert [e["error"] for e in errors] == ["NoName has no name", "<class 'int'> is not a Restorer subclass"]
    assert out.err.count("plugin two-errors (?) failed to load") == 2


def test_a_misspelled_hook_fails_its_module_with_a_hint(registry: Registry) -> None:
    sharpen = example("sharpen_restorer").SharpenRestorer
    typo = SimpleNamespace(register_describer=hookimpl(lambda register: None), register_restorers=hookimpl(lambda register: register(sharpen)))
    source = registry.add_module(typo, "typo-plugin")
    assert source.errors == ["PluginError: unknown hook register_describer (did you mean register_describers?)"]
    assert "sharpen" not in registry.names(Role.restorer) and not registry.pm.has_plugin("typo-plugin")
    registry.add_module(example("sharpen_restorer"))  # later modules are unaffected
    assert "sharpen" in registry.names(Role.restorer)


EXAMPLE_MODULES = sorted((REPO / "examples").rglob("*.py"))


@pytest.mark.parametrize("path", EXAMPLE_MODULES, ids=lambda p: str(p.relative_to(REPO / "examples")))
def test_the_examples_import_only_what_sedic_kit_exports(path: Path) -> None:
    """CONTRIBUTING: everything a plugin needs comes from ``sedic_kit`` itself, never a submodule."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sedic_kit"):
            assert node.module == "sedic_kit", f"{path.name}:{node.lineno}: from {node.module} import ..."
            assert {a.name for a in node.names} <= set(sedic_kit.__all__), f"{path.name}:{node.lineno}"
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("sedic_kit.") for a in node.names), f"{path.name}:{node.lineno}"


def test_source_image_fields_are_documented_in_contributing() -> None:
    guide = (REPO / "CONTRIBUTING.md").read_text()
    table = guide[guide.index("`sedic_kit.SourceImage`") : guide.index("A plugin class declares")]
    documented = re.findall(r"^\| `SourceImage\.(\w+)` \| `[^`]+` \| \S", table, re.M)
    declared = [f.name for f in dataclasses.fields(SourceImage)] + ["size"]
    assert documented == declared
