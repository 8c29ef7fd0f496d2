"""The contract every plugin of a role must keep, checked on any registered plugin.

``tests/test_contracts.py`` runs these checks on every plugin of the registry (so a new plugin
is exercised by being registered); each check raises AssertionError naming what broke. Every
role: ``release()`` before anything is loaded is harmless, and after it the plugin gives the same
answer (reloading what it freed).
Model-backed plugins run with the ``tiny`` profile's options (tiny random models) or, for plugins the
profile does not choose, the random weights of ``tiny_backends.TINY``; a plugin whose backend is
unavailable here must say so with one-line ``ModelNotFoundError``/``BackendError``.
"""

from __future__ import annotations

import time
import typing
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic.fields import FieldInfo

from conftest import REPO, synthetic_image
from tiny_backends import TINY
from sedic_kit.codec import Codec
from sedic_kit.container import PluginRef, SedicFile, pack, unpack
from sedic_kit.errors import BackendError, FormatError, ModelNotFoundError, ProfileError
from sedic_kit.imaging import load_image, resize_mask
from sedic_kit.masks import to_grid
from sedic_kit.payload import Payload, SemanticObject, SourceImage
from sedic_kit.plugins import Registry
from sedic_kit.plugin_options import instantiate
from sedic_kit.profiles import load_profile
from sedic_kit.roles import DECODER_ROLES, ROLE_BASES, Describer, Grounder, MaskCoder, Plugin, ReferenceCodec, Restorer, Role, Segmenter, TextCoder

WIDTH, HEIGHT = 70, 50
TEXTS = [
    ["A yellow disc on a gradient, soft light.", "yellow disc", "Round, bright, flat colour.", "gradient", ""],
    [""],
    ["ÉCOLE café 中文 x²", "\0\n\t", "A" * 300],
]
GARBAGE = [b"", b"\x00", b"\xff" * 40, b"\x07garbage", bytes(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8))]
SKIPPABLE = (ModelNotFoundError, BackendError)
"""What a plugin may raise when its weights or service are absent here (the check is then skipped)."""
DOCS = (REPO / "README.md").read_text() + (REPO / "CONTRIBUTING.md").read_text()


def contract_options(role: Role, name: str, root: Path) -> dict[str, Any]:
    """The ``tiny`` profile's options when it chooses this plugin, then the random weights
    ``TINY`` writes under ``root`` for it."""
    choice = load_profile("tiny").roles[role]
    options = dict(choice.options) if choice.plugin == name else {}
    return {**options, **TINY[name](root)} if name in TINY else options


def build(cls: type[Plugin], options: dict[str, Any]) -> Plugin:
    """The plugin with ``options``, on seeded random weights where it has a ``pretrained`` switch."""
    seeded = {"pretrained": False} if "pretrained" in cls.Options.model_fields else {}
    return instantiate(cls, {**options, **seeded})


def masks() -> list[np.ndarray]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return [((x - 40) / 18) ** 2 + ((y - 22) / 14) ** 2 <= 1, (x < 30) & (y > 20), np.zeros((HEIGHT, WIDTH), bool)]


def image() -> Image.Image:
    return synthetic_image(WIDTH, HEIGHT, seed=3)


def small_reference() -> Image.Image:
    return image().resize((WIDTH // 2, HEIGHT // 2), Image.Resampling.BOX)


# -- options ---------------------------------------------------------------------------------
def check_options(cls: type[Plugin]) -> None:
    """Defaults validate, and every option is described (pydantic) or documented in the guides."""
    cls.Options()
    for key, info in cls.Options.model_fields.items():
        assert isinstance(info, FieldInfo)
        assert info.description or f"`{key}`" in DOCS, f"{cls.role.value} '{cls.name}': option {key} is not documented"
    assert set(cls.decode_params) <= set(cls.Options.model_fields), f"{cls.name}: decode_params must be options"


def other_value(cls: type[Plugin], key: str) -> Any:
    """A valid non-default value of option ``key`` (from its type), or None when there is none."""
    info = cls.Options.model_fields[key]
    default = info.default
    annotation = info.annotation
    optional = [a for a in typing.get_args(annotation) if a is not type(None)]
    if default is None and len(optional) == 1:  # `X | None = None`: any valid X differs from the default
        annotation, default = optional[0], {int: 1, float: 1.0, str: ""}.get(optional[0])
    candidates: list[Any] = []
    if typing.get_origin(annotation) is typing.Literal:
        candidates = [c for c in typing.get_args(annotation) if c != default]
    elif annotation is bool:
        candidates = [not default]
    elif annotation is int:
        candidates = [default + 1, default - 1, default + 7]
    elif annotation is float:
        candidates = [default + 0.5, default * 0.5, default + 0.1, default - 0.1]
    elif annotation is str:
        candidates = [default + "-x"]
    for value in candidates:
        try:
            cls.Options(**{key: value})
        except Exception:
            continue
        return value
    return None


def check_decode_params_survive_the_header(registry: Registry, cls: type[Plugin], options: dict[str, Any]) -> None:
    """Each decode parameter set to a non-default value reaches the decoder's plugin unchanged."""
    codec = Codec.from_profile("lite", registry=registry)
    for key in cls.decode_params:
        value = other_value(cls, key)
        assert value is not None, f"{cls.name}: no non-default value found for decode parameter {key}"
        plugin = cls(cls.Options(**{**options, key: value}))
        refs = {role: PluginRef(p.name, p.version, p.decode_config()) for role, p in codec.plugins.items() if role in DECODER_ROLES}
        refs[cls.role] = PluginRef(cls.name, cls.version, plugin.decode_config())
        f = unpack(pack(SedicFile(WIDTH, HEIGHT, refs))[0])
        decoder = codec.decoder_plugin(ROLE_BASES[cls.role], f.plugins[cls.role])
        assert type(decoder) is cls and decoder.decode_config() == {key: value}, f"{cls.name}: {key} lost in the header"


# -- decoder-side roles ----------------------------------------------------------------------
def garbage_is_a_format_error(decode: Any, valid: Any) -> None:
    """Every garbage input fails with FormatError or decodes to something ``valid`` accepts."""
    for data in GARBAGE:
        start = time.perf_counter()
        try:
            out = decode(data)
        except FormatError:
            continue
        except Exception as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"garbage {data[:8]!r}... raised {type(exc).__name__}: {exc} (must be FormatError)") from None
        finally:
            assert time.perf_counter() - start < 10, f"garbage {data[:8]!r} took too long"
        valid(out)


def check_text_coder(coder: TextCoder) -> None:
    for texts in TEXTS:
        data = coder.encode(texts)
        assert isinstance(data, bytes) and coder.decode(data) == texts, f"{coder.name}: {texts!r} does not round-trip"
    coder.release()
    assert coder.encode(texts) == data and coder.decode(data) == texts, f"{coder.name}: another answer after release()"
    garbage_is_a_format_error(coder.decode, lambda out: all(isinstance(t, str) for t in out))


def check_mask_coder(coder: MaskCoder) -> None:
    reference = small_reference()
    objects = masks()
    data = coder.encode(objects, WIDTH, HEIGHT, reference=reference)
    out = coder.decode(data, len(objects), WIDTH, HEIGHT, reference=reference)
    assert len(out) == len(objects), f"{coder.name}: {len(out)} masks decoded for {len(objects)}"
    for got, mask in zip(out, objects):
        got = np.asarray(got)
        assert got.dtype == bool and got.ndim == 2, f"{coder.name}: masks must be 2-D boolean arrays"
        full = resize_mask(got, HEIGHT, WIDTH)
        union = (full | mask).sum()
        assert union == 0 or (full & mask).sum() / union > 0.5, f"{coder.name}: decoded mask far from the coded one"
        scale = getattr(coder.options, "scale", None)
        if isinstance(scale, int):
            assert np.array_equal(got, to_grid(mask, WIDTH, HEIGHT, scale)), f"{coder.name}: not lossless on its grid"
    coder.release()
    again = coder.decode(data, len(objects), WIDTH, HEIGHT, reference=reference)
    assert again[0].tobytes() == out[0].tobytes(), f"{coder.name}: not deterministic, or another answer after release()"

    def valid(out: list[np.ndarray]) -> None:
        assert len(out) == 2 and all(np.asarray(m).dtype == bool for m in out)

    garbage_is_a_format_error(lambda g: coder.decode(g, 2, WIDTH, HEIGHT, reference=reference), valid)


def check_reference_codec(codec: ReferenceCodec) -> None:
    data = codec.encode(image())
    decoded = codec.decode(data, WIDTH, HEIGHT)
    assert isinstance(data, bytes) and decoded.mode == "RGB", f"{codec.name}: decode must return RGB"
    assert 1 <= decoded.width <= WIDTH and 1 <= decoded.height <= HEIGHT, f"{codec.name}: decoded {decoded.size}"
    codec.release()
    again = codec.decode(data, WIDTH, HEIGHT)
    assert again.tobytes() == decoded.tobytes(), f"{codec.name}: decoding is not deterministic, or another answer after release()"
    for rung in codec.rate_ladder()[:1]:
        instantiate(type(codec), {**codec.options.model_dump(), **rung})

    def valid(out: Image.Image) -> None:
        assert isinstance(out, Image.Image) and out.mode == "RGB"

    garbage_is_a_format_error(lambda g: codec.decode(g, WIDTH, HEIGHT), valid)


def check_restorer(restorer: Restorer) -> None:
    objects = [SemanticObject(f"object {i}", "details", mask=to_grid(m, WIDTH, HEIGHT, 8)) for i, m in enumerate(masks()[:2])]
    payload = Payload(WIDTH, HEIGHT, "a yellow disc on a gradient", objects)
    out = restorer.restore(small_reference(), payload)
    assert out.mode == "RGB" and out.size == (WIDTH, HEIGHT), f"{restorer.name}: returned {out.mode} {out.size}"
    restorer.release()
    again = restorer.restore(small_reference(), payload)
    assert again.tobytes() == out.tobytes(), f"{restorer.name}: restoring is not deterministic, or another answer after release()"


# -- encoder-side roles ----------------------------------------------------------------------
def source(tmp: Path) -> SourceImage:
    path = tmp / "contract.png"
    image().save(path)
    (tmp / "contract.json").write_text(
        '{"caption": "A yellow disc on a gradient.", "objects": [{"name": "yellow disc", "details": "round", "box": [22, 8, 58, 36]}]}'
    )
    return load_image(path)


def check_payload(payload: Payload, src: SourceImage, who: str, masks_needed: bool = False) -> None:
    w, h = src.size
    assert isinstance(payload, Payload) and (payload.width, payload.height) == (w, h), f"{who}: payload size"
    assert isinstance(payload.caption, str), f"{who}: caption must be a string"
    for o in payload.objects:
        assert isinstance(o.name, str) and o.name.strip(), f"{who}: objects need names"
        if o.box is not None:
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h, f"{who}: box {o.box} outside the image"
        if masks_needed:
            assert o.mask is not None and o.mask.shape == (h, w) and o.mask.dtype == bool, f"{who}: mask of {o.name}"


def said(payload: Payload) -> tuple[Any, ...]:
    """Everything a payload says, comparable with ``==``."""
    objects = [(o.name, o.details, o.box, o.score, None if o.mask is None else o.mask.tobytes()) for o in payload.objects]
    return payload.caption, objects


def check_describer(describer: Describer, src: SourceImage) -> None:
    out = describer.describe(src)
    check_payload(out, src, describer.name)
    describer.release()
    assert said(describer.describe(src)) == said(out), f"{describer.name}: another answer after release()"


def check_grounder(grounder: Grounder, src: SourceImage) -> None:
    w, h = src.size
    given = Payload(w, h, "A yellow disc on a gradient.", [SemanticObject("yellow disc", "round"), SemanticObject("disc", "", box=(22, 8, 58, 36))])
    out = grounder.ground(src, given)
    check_payload(out, src, grounder.name)
    assert {o.name for o in out.objects} <= {"yellow disc", "disc"}, f"{grounder.name}: grounders keep or drop objects, never invent"
    grounder.release()
    assert said(grounder.ground(src, given)) == said(out), f"{grounder.name}: another answer after release()"


def check_segmenter(segmenter: Segmenter, src: SourceImage) -> None:
    w, h = src.size
    given = Payload(w, h, "c", [SemanticObject("yellow disc", "round", box=(22, 8, 58, 36)), SemanticObject("gradient", "", box=(0, 20, 30, 50))])
    out = segmenter.segment(src, given)
    check_payload(out, src, segmenter.name, masks_needed=True)
    assert [o.name for o in out.objects] == ["yellow disc", "gradient"], f"{segmenter.name}: segmenters keep every object"
    segmenter.release()
    assert said(segmenter.segment(src, given)) == said(out), f"{segmenter.name}: another answer after release()"


def check_plugin(registry: Registry, role: Role, name: str, tmp: Path, options: dict[str, Any] | None = None) -> str | None:
    """Run every check of ``role`` on plugin ``name`` (``options`` over the contract's own, e.g. a
    local service's address); the reason when it cannot run here."""
    cls = registry.get(role, name)
    check_options(cls)
    missing = cls.missing_requirements()
    if missing:
        return f"needs {', '.join(missing)}"
    try:
        contract = contract_options(role, name, tmp)
        plugin = build(cls, {**contract, **(options or {})})
        plugin.release()  # nothing loaded yet: nothing to free, nothing to break
        if role in DECODER_ROLES:
            check_decode_params_survive_the_header(registry, cls, contract)
        if isinstance(plugin, TextCoder):
            check_text_coder(plugin)
        elif isinstance(plugin, MaskCoder):
            check_mask_coder(plugin)
        elif isinstance(plugin, ReferenceCodec):
            check_reference_codec(plugin)
        elif isinstance(plugin, Restorer):
            check_restorer(plugin)
        elif isinstance(plugin, Describer):
            check_describer(plugin, source(tmp))
        elif isinstance(plugin, Grounder):
            check_grounder(plugin, source(tmp))
        elif isinstance(plugin, Segmenter):
            check_segmenter(plugin, source(tmp))
    except SKIPPABLE as exc:
        assert "\n" not in str(exc), f"{name}: errors are one line"
        return str(exc)
    except ProfileError as exc:
        raise AssertionError(f"{role.value} '{name}': the contract options are invalid: {exc}") from None
    return None

