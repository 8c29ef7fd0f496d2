"""ORAG restorer (Algorithm 1) with tiny random SD1.5 models on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sedic_kit.codec import Codec
from sedic_kit.container import unpack
from sedic_kit.errors import ModelNotFoundError, ProfileError
from sedic_kit.masks import to_grid
from sedic_kit.payload import Payload, SemanticObject
from sedic_kit.roles import Role

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sedic_plugins.orag import OragRestorer  # noqa: E402
from sedic_plugins.orag.canvas import Canvas  # noqa: E402
from sedic_plugins.orag.components import load_sd15  # noqa: E402
from sedic_plugins.orag.options import OragOptions  # noqa: E402
from sedic_plugins.orag.sampler import OragSampler  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"
FAST = {"object_steps": 4, "global_steps": 3, "cfg_scale": 3.0}


def image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, 128 + 60 * np.sin(x / 7.0)], -1) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def box(width: int, height: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture(scope="module")
def parts():  # type: ignore[no-untyped-def]
    return load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32")


def sampler(parts, **options) -> OragSampler:  # type: ignore[no-untyped-def]
    return OragSampler(parts, OragOptions(**{**FAST, **options}))


def test_guidance_lowers_energy_on_guided_block(parts) -> None:  # type: ignore[no-untyped-def]
    s = sampler(parts, eta=40.0)
    canvas = Canvas(128, 128)
    pixels = torch.from_numpy(canvas.pad_image(image(128, 128))).permute(2, 0, 1)[None]
    obj = SemanticObject("red car", "a red car", mask=box(128, 128, 0, 0, 48, 128))
    with torch.no_grad():
        cond = s.object_condition(pixels, obj, canvas, s.embed(s.options.negative_prompt))
        t = cond.timesteps[0]
        processors = dict(parts.unet.attn_processors)
        before, after = [], []
        for seed in range(4):
            z = torch.randn((1, 4, *canvas.latent), generator=torch.Generator().manual_seed(seed))
            e0, z1 = s.guide(cond, z, t)
            before.append(e0)
            after.append(float(s.energy(cond, z1, t)))
            assert e0 == pytest.approx(float(s.energy(cond, z, t)))
    assert np.mean(after) < np.mean(before)
    assert parts.unet.attn_processors == processors  # the capture processors are gone again
    assert cond.tokens == [2, 3, 4, 5, 6, 7]  # bytes of "red car" after <bos> and "a"


def test_eta_zero_reproduces_unguided_sampling(parts) -> None:  # type: ignore[no-untyped-def]
    img = image(96, 64)
    objects = [SemanticObject("disc", "a yellow disc", mask=box(96, 64, 10, 5, 60, 50))]
    guided = sampler(parts, eta=0.0, guidance_threshold=0).run(img, "a gradient", objects)
    plain = sampler(parts, eta=0.0, guidance_threshold=1000).run(img, "a gradient", objects)
    assert len(guided.stages[0].energies) == 4 and not plain.stages[0].energies  # the guidance path ran
    for a, b in zip(guided.stages, plain.stages):
        assert all(torch.equal(x, y) for x, y in zip(a.latents, b.latents))
    assert np.array_equal(np.asarray(guided.image), np.asarray(plain.image))


def test_blend_keeps_previous_stage_outside_each_mask(parts) -> None:  # type: ignore[no-untyped-def]
    img = image(128, 96, seed=1)
    objects = [
        SemanticObject("sun", "a yellow sun", mask=box(128, 96, 8, 8, 72, 56)),
        SemanticObject("tree", "a green tree", mask=box(128, 96, 40, 30, 120, 90)),
    ]
    result = sampler(parts, guidance_threshold=500).run(img, "a landscape", objects)
    assert [s.prompt for s in result.stages] == ["a yellow sun", "a green tree", "a landscape"]
    previous = result.reference
    assert previous is not None and len(previous) == 4
    for stage in result.stages[:2]:
        assert stage.mask is not None and 0 < stage.mask.sum() < stage.mask.size and stage.energies
        outside = torch.from_numpy(~stage.mask)
        for z, before in zip(stage.latents, previous):
            assert torch.equal(z[..., outside], before[..., outside])
            assert not torch.equal(z[..., ~outside], before[..., ~outside])
        previous = stage.latents


def test_no_objects_runs_only_the_global_stage(parts) -> None:  # type: ignore[no-untyped-def]
    result = sampler(parts).run(image(64, 64), "a gradient", [])
    assert len(result.stages) == 1 and result.reference is None
    assert len(result.stages[0].latents) == FAST["global_steps"] and result.stages[0].mask is None


@pytest.mark.parametrize("scheduler", ["dpm++2m", "unipc", "euler"])
def test_img2img_strength_with_other_schedulers(parts, scheduler: str) -> None:  # type: ignore[no-untyped-def]
    objects = [SemanticObject("disc", "a disc", mask=box(64, 64, 0, 0, 40, 30))]
    half = sampler(parts, scheduler=scheduler, strength=0.5, guidance_threshold=0).run(image(64, 64), "a gradient", objects)
    assert [len(s.latents) for s in half.stages] == [2, 2] and len(half.stages[0].energies) == 2
    outside = torch.from_numpy(~half.stages[0].mask)
    assert half.reference is not None and len(half.reference) == 2
    assert all(torch.equal(z[..., outside], r[..., outside]) for z, r in zip(half.stages[0].latents, half.reference))
    full = sampler(parts, scheduler=scheduler).run(image(64, 64), "a gradient", objects)
    assert not np.array_equal(np.asarray(half.image), np.asarray(full.image))


def test_odd_size_keeps_an_asymmetric_mask_aligned(parts) -> None:  # type: ignore[no-untyped-def]
    width, height = 75, 45  # padded to 128 x 64: latent 16 x 8
    full = box(width, height, 0, 0, 32, 16)  # top-left, wider than tall
    grid = to_grid(full, width, height, 8)  # what the mask coder delivers
    expected = np.zeros((8, 16), dtype=bool)
    expected[:2, :4] = True
    assert np.array_equal(Canvas(width, height).latent_mask(grid), expected)
    result = sampler(parts).run(image(width, height), "a gradient", [SemanticObject("box", "a box", mask=grid)])
    assert np.array_equal(result.stages[0].mask, expected)
    assert result.image.size == (width, height)


def test_memory_savers_keep_sizes_and_processors(parts) -> None:  # type: ignore[no-untyped-def]
    objects = [SemanticObject("disc", "a disc", mask=box(150, 70, 0, 0, 60, 70))]
    result = sampler(parts, vae_tiling="on", attention_slicing=True, guidance_threshold=0).run(image(150, 70), "x", objects)
    assert result.image.size == (150, 70) and result.stages[0].energies
    assert {type(p).__name__ for p in parts.unet.attn_processors.values()} == {"SlicedAttnProcessor"}
    sampler(parts).run(image(64, 64), "x", [])
    assert {type(p).__name__ for p in parts.unet.attn_processors.values()} == {"AttnProcessor2_0"}


def test_latent_controlnet_mode() -> None:
    parts = load_sd15("tiny/sd15", "tiny/sd15-latent", "cpu", "float32")
    objects = [SemanticObject("disc", "a disc", mask=box(64, 64, 0, 0, 30, 64))]
    result = OragSampler(parts, OragOptions(**FAST, control="latent")).run(image(64, 64), "a gradient", objects)
    assert result.image.size == (64, 64) and len(result.stages) == 2
    mismatched = OragRestorer(model="tiny/sd15", controlnet="tiny/sd15-tile", control="latent")
    with pytest.raises(ProfileError, match="4 condition channels"):
        mismatched.restore(image(64, 64), Payload(64, 64, "x"))


def test_missing_models_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        OragRestorer(model=str(tmp_path / "nope")).restore(image(64, 64), Payload(64, 64))
    (tmp_path / "sd" / "unet").mkdir(parents=True)
    (tmp_path / "sd" / "unet" / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="lacks unet/diffusion_pytorch_model.safetensors, vae/config.json") as err:
        OragRestorer(model=str(tmp_path / "sd")).restore(image(64, 64), Payload(64, 64))
    assert "\n" not in str(err.value)
    specs = OragRestorer().required_models()
    assert [(m.what, m.spec) for m in specs] == [
        ("restorer.model", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
        ("restorer.controlnet", "lllyasviel/control_v11f1e_sd15_tile"),
    ]


def test_codec_end_to_end_kodak_size_is_deterministic() -> None:
    restorer = {"plugin": "orag", "model": "tiny/sd15", "controlnet": "tiny/sd15-tile", **FAST, "seed": 7}
    codec = Codec.from_profile("lite", segmenter={"plugin": "box"}, restorer=restorer)
    encoded = codec.encode(EXAMPLES / "kodim23.png")
    assert (encoded.payload.width, encoded.payload.height) == (768, 512) and len(encoded.payload.objects) == 2
    header = unpack(encoded.data).plugins[Role.restorer]
    assert header.name == "orag" and header.params == {**FAST, "seed": 7}
    first = codec.decode(encoded.data)
    # a decoder whose profile has the defaults takes steps, CFG and seed from the header
    other = Codec.from_profile("lite", restorer={"plugin": "orag", "model": "tiny/sd15", "controlnet": "tiny/sd15-tile"})
    second = other.decode(encoded.data)
    assert first.size == (768, 512)
    assert np.array_equal(np.asarray(first), np.asarray(second))


def test_controlnet_condition_is_embedded_once_per_stage_and_batch(parts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Embedding the constant condition once gives the same image as embedding it every step."""
    from sedic_plugins.orag import sampler as sampler_module

    obj = SemanticObject("red car", "a red car", mask=box(64, 48, 0, 0, 30, 48))
    calls: list[int] = []
    embedding = parts.controlnet.controlnet_cond_embedding
    handle = embedding.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        once = sampler(parts).run(image(64, 48), "a street", [obj]).image
        assert sorted(calls) == [1, 2, 2]  # object stage: CFG batch and guidance batch; global stage: CFG batch
        monkeypatch.setattr(sampler_module._EmbedOnce, "forward", lambda self, cond: self.inner(cond))
        calls.clear()
        every_step = sampler(parts).run(image(64, 48), "a street", [obj]).image
        assert len(calls) > 3
    finally:
        handle.remove()
    assert np.array_equal(np.asarray(once), np.asarray(every_step))
