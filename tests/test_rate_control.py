"""Semantic rate control (J, l_d, l_all from the profile's [rate] policy), fast reference search, BD deltas."""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sedic_kit import Codec
from sedic_kit.errors import ProfileError
from sedic_kit.profiles import load_profile
from sedic_kit.rate import RatePolicy, SemanticBudget, fit_reference
from sedic_kit.roles import ReferenceCodec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"

LONG = json.dumps(
    {
        "objects": [
            {"name": "red parrot", "details": "a scarlet macaw with blue and yellow wings perched on the left branch facing right"},
            {"name": "green parrot", "details": "a smaller bird with emerald feathers and a pale beak on the right"},
            {"name": "branch", "details": "a weathered grey branch crossing the frame diagonally"},
        ],
        "caption": "two parrots perched side by side on a branch against a soft green background in daylight, "
        "sharp focus on the feathers and the eyes, shallow depth of field, bright natural colours, the branch runs "
        "from the lower left to the upper right and the background is evenly blurred",
    }
)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Gradients, a disc and noise: behaves like a small photo under lossy codecs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0)], -1)
    base[(x - width * 0.6) ** 2 + (y - height * 0.45) ** 2 < (height * 0.25) ** 2] = [240, 200, 40]
    return Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8), "RGB")


# -- the policy ----------------------------------------------------------------------------
def test_default_policy_is_the_papers_operating_points_and_a_linear_rule() -> None:
    policy = load_profile("lite").rate_policy()
    assert policy.choose(0.01) == policy.choose(0.025) == SemanticBudget(1, 20, 30)  # J=1, 20/30 words: 0.02-0.03 bpp
    assert policy.choose(0.045) == policy.choose(0.2) == SemanticBudget(3, 30, 50)  # J=3, 30/50 words: 0.04-0.05 bpp
    assert policy.choose(0.03) == SemanticBudget(2, 23, 35)  # a quarter of the way: 1.5 -> 2, 22.5 -> 23, 35
    assert policy.choose(0.035) == SemanticBudget(2, 25, 40)
    assert RatePolicy() == policy and load_profile("offline").rate_policy() == policy  # inherited through extends


def test_policy_keys_are_checked_with_one_line_errors(tmp_path: Path) -> None:
    custom = load_profile("lite", ["rate.points=[[0.01, 0, 0, 10], [0.05, 3, 30, 50]]", "rate.redescribe=true"])
    assert custom.rate_policy().choose(0.01) == SemanticBudget(0, 0, 10) and custom.rate_policy().redescribe
    assert custom.to_dict()["rate"]["redescribe"] is True  # part of the eval fingerprint
    with pytest.raises(ProfileError, match=r"^--set: rate\.points: .*J must be 0-3"):
        load_profile("lite", ["rate.points=[[0.03, 4, 20, 30]]"])
    with pytest.raises(ProfileError, match=r"^--set: rate\.colour: unknown key \(valid: points, redescribe\)$"):
        load_profile("lite", ["rate.colour=1"])
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "lite"\n[rate]\npoints = [[0.04, 1, 20, 30], [0.02, 3, 30, 50]]\n')
    with pytest.raises(ProfileError, match=rf"^{mine}: rate\.points: .*increasing bpp order"):
        load_profile(mine)


# -- trimming, or asking afresh, through a real chat-completions server -----------------------
def lmm_codec(server_url: str, *overrides: str) -> Codec:
    return Codec.from_profile(
        "lite", overrides=list(overrides),
        describer={"plugin": "openai", "base_url": server_url, "model": "llava-test", "max_retries": 0, "repair": False},
    )


def test_target_trims_the_describers_answer_without_a_second_call(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    from chat_server import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    image = Image.open(EXAMPLES / "kodim23.png").convert("RGB").resize((192, 128))
    with ChatServer([("ok", LONG)]) as server:
        codec = lmm_codec(server.base_url)
        result = codec.encode(image, target_bpp=0.03)  # J=2, l_d=23, l_all=35
        assert len(server.requests) == 1  # one describer call, trimmed afterwards
        prompt = server.requests[0]["body"]["messages"][0]["content"][-1]["text"]
    assert "at most 3" in prompt  # the profile's own limits were asked for
    payload = codec.decode_detailed(result.data).payload
    assert [o.name for o in payload.objects] == ["red parrot", "green parrot"]  # the most important first
    assert len(payload.caption.split()) == 35 and payload.caption.startswith("two parrots perched")
    assert all(len(o.details.split()) <= 23 for o in payload.objects)
    assert "semantics J=2, l_d=23, l_all=35 (trimmed): kept 2 of 3 objects, 35 of " in result.notes[0]


def test_redescribe_asks_once_with_the_chosen_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    from chat_server import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    image = Image.open(EXAMPLES / "kodim23.png").convert("RGB").resize((192, 128))
    with ChatServer([("ok", LONG)]) as server:
        codec = lmm_codec(server.base_url, "rate.redescribe=true")
        result = codec.encode(image, target_bpp=0.02)  # J=1, l_d=20, l_all=30
        assert len(server.requests) == 1
        prompt = server.requests[0]["body"]["messages"][0]["content"][-1]["text"]
        assert "list the 1 most significant objects" in prompt and "at most 20 words" in prompt and "at most 30 words" in prompt
        codec.encode(image)  # without a target the profile's own describer (J=3) is asked
        assert "list the 3 most significant objects" in server.requests[1]["body"]["messages"][0]["content"][-1]["text"]
    assert [o.name for o in result.payload.objects] == ["red parrot"] and "(asked afresh)" in result.notes[0]


def test_redescribe_needs_a_describer_with_the_limits() -> None:
    from sedic_kit.payload import Payload, SourceImage
    from sedic_kit.roles import Describer, Options

    class Bare(Describer):
        name = "bare"

        def describe(self, source: SourceImage) -> Payload:
            return Payload(*source.size, caption="a photo")

    codec = Codec.from_profile("lite", overrides=["rate.redescribe=true"])
    codec.plugins = dataclasses.replace(codec.plugins, describer=Bare(Options()))
    with pytest.raises(ProfileError, match="^rate.redescribe: describer 'bare' has no max_objects/detail_words/caption_words"):
        codec.encode(photo(64, 48), target_bpp=0.5)


def test_redescribe_shares_the_describers_loaded_model_across_images() -> None:
    """Asking with a budget uses the profile's describer itself: one model load for a whole batch,
    which ``release()`` then reaches; the describer's own options are back after each image."""
    from sedic_kit.payload import Payload, SourceImage
    from sedic_kit.roles import Describer, Options

    class LimitsOptions(Options):
        max_objects: int = 3
        detail_words: int = 40
        caption_words: int = 60

    class Loading(Describer[LimitsOptions]):
        name = "loading"
        loads = 0
        asked: list[tuple[int, int, int]] = []

        def __init__(self, options: LimitsOptions) -> None:
            super().__init__(options)
            self._model: object | None = None

        def describe(self, source: SourceImage) -> Payload:
            if self._model is None:
                type(self).loads += 1
                self._model = object()
            o = self.options
            type(self).asked.append((o.max_objects, o.detail_words, o.caption_words))
            return Payload(*source.size, caption="a photo of a gradient")

        def release(self) -> None:
            self._model = None

    codec = Codec.from_profile("lite", overrides=["rate.redescribe=true"])
    describer = Loading(LimitsOptions())
    codec.plugins = dataclasses.replace(codec.plugins, describer=describer)
    for seed in (0, 1):
        codec.encode(photo(64, 48, seed), target_bpp=0.5)  # J=3, l_d=30, l_all=50
    assert Loading.loads == 1 and Loading.asked == [(3, 30, 50), (3, 30, 50)]
    assert describer.options == LimitsOptions() and describer._model is not None
    codec.release("describer")
    assert describer._model is None


# -- fast reference search -----------------------------------------------------------------
def test_search_probes_fast_and_codes_the_file_at_the_profiles_setting() -> None:
    codec = Codec.from_profile("lite")  # AVIF at a slow speed
    image = Image.open(EXAMPLES / "kodim03.png").convert("RGB").resize((192, 128))
    speeds: dict[str, list[int]] = {"build": [], "probe": []}

    def build(ref: ReferenceCodec) -> tuple[bytes, dict[str, int]]:
        speeds["build"].append(ref.options.speed)  # type: ignore[attr-defined]
        section = ref.encode(image)
        return b"\0" * (len(section) + 40), {"reference": 8 * len(section), "text": 320}

    def probe(ref: ReferenceCodec) -> bytes:
        speeds["probe"].append(ref.options.speed)  # type: ignore[attr-defined]
        return ref.encode(image)

    budget = int(0.5 * 192 * 128)
    choice = fit_reference(codec.reference_codec, budget, build, probe)
    assert choice.fits and 0.85 * budget <= 8 * len(choice.data) <= budget
    own = codec.reference_codec.options.speed  # type: ignore[attr-defined]
    assert own < 6 and choice.codec.options.speed == own and choice.tried <= 3 and choice.probes >= 6  # type: ignore[attr-defined]
    assert speeds["build"].count(own) == choice.tried and set(speeds["probe"]) == {6}
    real = choice.codec.encode(image)  # the chosen setting, coded as the file has it
    assert 8 * len(real) == choice.bits["reference"]


def test_codec_target_lands_under_the_target_with_few_real_encodes() -> None:
    codec = Codec.from_profile("lite")
    image = Image.open(EXAMPLES / "kodim23.png").convert("RGB").resize((256, 168))
    for target in (0.2, 0.4):
        result = codec.encode(image, target_bpp=target)
        assert 0.85 * target <= result.bpp <= target
        coded = int(result.notes[-1].rsplit(", ", 1)[1].split(" coded")[0])
        assert coded <= 4 and "fast probes" in result.notes[-1]


# -- Bjontegaard deltas ----------------------------------------------------------------------
def test_bd_deltas_match_closed_form_cases() -> None:
    pytest.importorskip("bjontegaard")
    from sedic_kit.eval.bd import bd_pair

    rate, psnr = [0.02, 0.03, 0.045], [24.0, 25.1, 26.0]
    bd_rate, bd_metric, note = bd_pair(rate, psnr, [r * 0.8 for r in rate], psnr)
    assert bd_rate == pytest.approx(-20.0, abs=1e-9) and note is None  # same quality at 80% of the rate
    assert bd_pair(rate, psnr, rate, [p + 0.5 for p in psnr])[1] == pytest.approx(0.5, abs=1e-12)
    lpips = [0.5, 0.4, 0.3]  # lower is better: BD-metric stays "test minus anchor"
    assert bd_pair(rate, lpips, rate, [v - 0.05 for v in lpips], higher_is_better=False)[1] == pytest.approx(-0.05, abs=1e-12)
    assert bd_pair(rate, lpips, [r * 0.9 for r in rate], lpips, higher_is_better=False)[0] == pytest.approx(-10.0, abs=1e-9)
    assert bd_pair(rate, [24.0, 23.0, 25.0], rate, psnr) == (None, None, "anchor: quality does not rise with rate")
    assert bd_pair(rate[:1], psnr[:1], rate, psnr)[2] == "anchor: needs two or more rate points"


def test_bd_rate_of_a_pchip_curve_against_direct_integration() -> None:
    """Independent check: integrate the log-rate gap of two PCHIP curves on a fine grid."""
    pytest.importorskip("bjontegaard")
    from scipy.interpolate import PchipInterpolator

    from sedic_kit.eval.bd import bd_pair

    ra, qa = [9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851]
    rt, qt = [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987]
    lo, hi = max(min(qa), min(qt)), min(max(qa), max(qt))
    grid = np.linspace(lo, hi, 200001)
    fa = PchipInterpolator(qa[::-1], np.log10(ra[::-1]))
    ft = PchipInterpolator(qt[::-1], np.log10(rt[::-1]))
    expected = (10 ** (np.trapezoid(ft(grid) - fa(grid), grid) / (hi - lo)) - 1) * 100
    assert bd_pair(ra, qa, rt, qt)[0] == pytest.approx(expected, abs=1e-6)
