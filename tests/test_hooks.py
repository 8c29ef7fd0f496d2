"""Every hook is documented and exercised here by a small real plugin, run through the codec."""

from __future__ import annotations

import inspect
import io
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer
from PIL import Image, ImageFilter

from conftest import REPO
from sedic_kit import Codec, hookimpl, hookspecs, load_profile
from sedic_kit import plugins as plugins_module
from sedic_kit.cli import main
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.errors import FormatError
from sedic_kit.plugins import Registry, get_registry
from sedic_kit.roles import Grounder, MaskCoder, ReferenceCodec, Restorer, Role, Segmenter, TextCoder

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


class DropGhosts(Grounder):
    name = "drop-ghosts"

    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        return payload.with_objects([replace(o, box=o.box or (0, 0, w, h)) for o in payload.objects if "ghost" not in o.name])


class EllipseSegmenter(Segmenter):
    name = "ellipse"

    def segment(self, source: SourceImage, payload: Payload) -> Payload:
        w, h = source.size
        y, x = np.mgrid[0:h, 0:w]
        out = []
        for o in payload.objects:
            x0, y0, x1, y1 = o.box or (0, 0, w, h)
            cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max(1, (x1 - x0) / 2), max(1, (y1 - y0) / 2)
            out.append(replace(o, mask=((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1))
        return payload.with_objects(out)


class PngReference(ReferenceCodec):
    name = "png-quarter"

    def encode(self, image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.resize((max(1, image.width // 4), max(1, image.height // 4))).save(buf, "PNG")
        return buf.getvalue()

    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        return Image.open(io.BytesIO(data)).convert("RGB")


class Utf16Text(TextCoder):
    name = "utf16"

    def encode(self, texts: list[str]) -> bytes:
        return "\x00".join(texts).encode("utf-16-le")

    def decode(self, data: bytes) -> list[str]:
        return data.decode("utf-16-le").split("\x00")


class BoxOnlyMasks(MaskCoder):
    """Sends each mask's bounding box (4 x uint16): lossy, but a real coder."""

    name = "bbox"

    def encode(self, masks: list[np.ndarray], width: int, height: int) -> bytes:
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if xs.size else [0, 0, 0, 0])
        return np.asarray(boxes, dtype="<u2").tobytes()

    def decode(self, data: bytes, count: int, width: int, height: int) -> list[np.ndarray]:
        boxes = np.frombuffer(data, dtype="<u2").reshape(count, 4)
        masks = []
        for x0, y0, x1, y1 in boxes:
            m = np.zeros((height, width), bool)
            m[y0:y1, x0:x1] = True
            masks.append(m)
        return masks


class SharpenRestorer(Restorer):
    name = "sharpen"

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        return reference.resize((payload.width, payload.height), Image.Resampling.BICUBIC).filter(ImageFilter.SHARPEN)


PLUGIN = SimpleNamespace(
    register_grounders=hookimpl(lambda register: register(DropGhosts)),
    register_segmenters=hookimpl(lambda register: register(EllipseSegmenter)),
    register_reference_codecs=hookimpl(lambda register: register(PngReference)),
    register_entropy_coders=hookimpl(lambda register: [register(Utf16Text), register(BoxOnlyMasks)]),
    register_restorers=hookimpl(lambda register: register(SharpenRestorer)),
)


def test_hook_register_grounders(registry: Registry, small_image: Path) -> None:
    registry.add_module(PLUGIN, "test-plugin")
    small_image.with_suffix(".json").write_text(
        '{"caption": "c", "objects": [{"name": "ghost ship", "details": "x"}, {"name": "disc", "details": "y", "box": [40, 12, 76, 46]}]}'
    )
    codec, _ = roundtrip(registry, small_image, grounder="drop-ghosts")
    assert [o.name for o in codec.encode(small_image).payload.objects] == ["disc"]


def test_hook_register_segmenters(registry: Registry, small_image: Path) -> None:
    registry.add_module(PLUGIN, "test-plugin")
    codec, _ = roundtrip(registry, small_image, segmenter="ellipse")
    mask = codec.encode(small_image).payload.objects[0].mask
    assert mask is not None and mask[29, 58] and not mask[12, 40]


def test_hook_register_reference_codecs(registry: Registry, small_image: Path) -> None:
    registry.add_module(PLUGIN, "test-plugin")
    codec, image = roundtrip(registry, small_image, reference_codec="png-quarter")
    assert codec.decode_detailed(codec.encode(small_image).data).reference.size == (24, 16)
    assert image.size == (96, 64)


def test_hook_register_entropy_coders(registry: Registry, small_image: Path) -> None:
    registry.add_module(PLUGIN, "test-plugin")
    codec, _ = roundtrip(registry, small_image, text_coder="utf16", mask_coder="bbox")
    result = codec.encode(small_image)
    decoded = codec.decode_detailed(result.data).payload
    assert decoded.caption == result.payload.caption
    assert result.bits["masks"] == 8 * 8
    assert decoded.objects[0].mask is not None and decoded.objects[0].mask.shape == (64, 96)


def test_hook_register_restorers(registry: Registry, small_image: Path) -> None:
    registry.add_module(PLUGIN, "test-plugin")
    codec, image = roundtrip(registry, small_image, restorer="sharpen")
    reference = codec.decode_detailed(codec.encode(small_image).data).reference
    expected = reference.resize((96, 64), Image.Resampling.BICUBIC).filter(ImageFilter.SHARPEN)
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    assert not np.array_equal(np.asarray(image), np.asarray(reference.resize((96, 64), Image.Resampling.BICUBIC)))


def test_a_private_registry_decodes_its_own_plugins(registry: Registry, small_image: Path) -> None:
    registry.add_module(PLUGIN, "test-plugin")
    codec, _ = roundtrip(registry, small_image, text_coder="utf16")
    data = codec.encode(small_image).data
    assert "utf16" not in get_registry().names(Role.text_coder)
    assert codec.decode_detailed(data).payload.caption == codec.encode(small_image).payload.caption
    with pytest.raises(FormatError, match="needs text_coder 'utf16' v1, which is not installed"):
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

    bad = SimpleNamespace(
        register_restorers=hookimpl(lambda register: register(NoName)),
        register_grounders=hookimpl(lambda register: register(SharpenRestorer)),
    )
    source = registry.add_module(bad, "bad-plugin")
    assert len(source.errors) == 2
    assert any("has no name" in e for e in source.errors) and any("is not a Grounder subclass" in e for e in source.errors)
    assert sum("bad-plugin" in line for line in registry.errors()) == 2
    dup = registry.add_module(SimpleNamespace(register_restorers=hookimpl(lambda register: register(type("U", (SharpenRestorer,), {"name": "upsample"})))), "dup")
    assert dup.errors == ["restorer 'upsample' is already registered by upsample"]
    assert registry.get(Role.restorer, "upsample").__module__ == "sedic_plugins.upsample"


def test_a_misspelled_hook_fails_its_module_with_a_hint(registry: Registry) -> None:
    typo = SimpleNamespace(register_describer=hookimpl(lambda register: None), register_restorers=hookimpl(lambda register: register(SharpenRestorer)))
    source = registry.add_module(typo, "typo-plugin")
    assert source.errors == ["PluginError: unknown hook register_describer (did you mean register_describers?)"]
    assert "sharpen" not in registry.names(Role.restorer) and not registry.pm.has_plugin("typo-plugin")
    registry.add_module(PLUGIN, "test-plugin")  # later modules are unaffected
    assert "sharpen" in registry.names(Role.restorer)

