"""CompressAI reference codecs: real bitstreams, bit-exact CPU round trips, checkpoints, training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sedic_kit import Codec
from sedic_kit.cli import main
from sedic_kit.errors import ModelNotFoundError
from sedic_kit.install import install_hint
from sedic_kit.plugins import get_registry
from sedic_kit.roles import Role

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("compressai") is None,
    reason=f"compressai not installed: {install_hint('compressai')}",
)


def gradient_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8), "RGB")


def reference_codec(name: str, **options: object) -> Codec:
    return Codec.from_profile("lite", overrides=[f"reference_codec.plugin={name}"], reference_codec=options)


def test_hyperprior_section_is_the_real_bitstream_and_decodes_bit_exactly() -> None:
    import torch
    import torch.nn.functional as F

    image = gradient_image(70, 45)
    codec = reference_codec("bmshj2018-hyperprior", pretrained=False, quality=1)
    result = codec.encode(image)
    plugin = codec.reference_codec
    model = plugin.model()
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    x = F.pad(x, (0, 128 - 70, 0, 64 - 45), mode="replicate")
    with torch.inference_mode():
        strings = model.compress(x)["strings"]
        y_hat = torch.round(model.g_a(x))  # what the entropy coder must reproduce exactly
        expected = model.g_s(y_hat).clamp(0, 1)[0, :, :45, :70]
    y, z = strings[0][0], strings[1][0]
    assert result.payload.reference == bytes([len(y)]) + y + z
    assert result.bits["reference"] >= 8 * (len(y) + len(z))
    fresh = reference_codec("bmshj2018-hyperprior", pretrained=False, quality=1)  # a new model instance
    decoded = fresh.decode_detailed(result.data)
    want = (expected * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(decoded.reference), want)
    assert decoded.image.size == (70, 45)


def test_cheng2020_checkpoint_saved_and_reloaded_round_trips(tmp_path: Path) -> None:
    import torch

    from sedic_plugins.reference_codecs.compressai.codecs import import_compressai

    import_compressai()
    from compressai.models import Cheng2020Attention

    torch.manual_seed(1)
    net = Cheng2020Attention(N=16).eval()
    net.update(force=True)
    path = tmp_path / "small-cheng.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    image = gradient_image(60, 40, seed=2)
    encoder = reference_codec("cheng2020-attn", checkpoint=str(path), downscale=1.0)
    result = encoder.encode(image)
    first = encoder.decode_detailed(result.data).reference
    second = reference_codec("cheng2020-attn", checkpoint=str(path)).decode_detailed(result.data).reference
    assert first.size == (60, 40)
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert 8 * len(result.payload.reference) < result.total_bits


def test_downscale_codes_at_reduced_resolution() -> None:
    codec = reference_codec("mbt2018-mean", pretrained=False, downscale=2.0)
    result = codec.encode(gradient_image(90, 50))
    decoded = codec.decode_detailed(result.data)
    assert decoded.reference.size == (45, 25)
    assert decoded.image.size == (90, 50)
    assert codec.reference_codec.decode_config() == {"pretrained": False, "downscale": 2.0}


def test_missing_zoo_weights_name_the_file_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    codec = reference_codec("cheng2020-attn", quality=1)
    with pytest.raises(ModelNotFoundError) as info:
        codec.encode(gradient_image(32, 32))
    message = str(info.value)
    assert "cheng2020_attn-mse-1-" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "\n" not in message
    assert codec.reference_codec.required_models()[0].url.endswith(".pth.tar")


def test_missing_checkpoint_is_one_line(tmp_path: Path) -> None:
    codec = reference_codec("mbt2018", checkpoint=str(tmp_path / "nope.pth"))
    with pytest.raises(ModelNotFoundError, match="nope.pth does not exist"):
        codec.encode(gradient_image(32, 32))


def test_all_architectures_are_registered() -> None:
    names = set(get_registry().names(Role.reference_codec))
    assert {"cheng2020-attn", "cheng2020-anchor", "mbt2018", "mbt2018-mean", "bmshj2018-hyperprior"} <= names


def test_train_codec_resumes_and_exports_a_loadable_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        gradient_image(72, 64, seed=i).save(data / f"{i}.png")
    out = tmp_path / "run"
    common = ["train-codec", "--arch", "bmshj2018-hyperprior", "--data", str(data), "--out", str(out), "--no-pretrained",
              "--batch-size", "2", "--crop", "64", "--checkpoint-every", "1", "--cpu"]
    assert main([*common, "--steps", "2"]) == 0
    assert (out / "checkpoints" / "step-00000002" / "step.json").is_file()
    assert main([*common, "--steps", "3"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002", "step-00000003"]
    exported = out / "bmshj2018-hyperprior-lmbda0.00018.pth"
    assert exported.is_file()
    codec = reference_codec("bmshj2018-hyperprior", checkpoint=str(exported))
    result = codec.encode(gradient_image(40, 30))
    again = reference_codec("bmshj2018-hyperprior", checkpoint=str(exported)).decode_detailed(result.data)
    assert np.array_equal(np.asarray(again.reference), np.asarray(codec.decode_detailed(result.data).reference))
