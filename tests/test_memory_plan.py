"""GPU memory plan of a profile (``sedic-kit models check PROFILE --memory``): arithmetic and output."""

from __future__ import annotations

import pytest

from sedic_kit.cli import main
from sedic_kit.memory_plan import CUDA_CONTEXT, GIB, HALF, PARAMS, RTX_4090, VLLM_OVERHEAD, MemoryPlan, kv_cache_bytes, plan, sd_activations
from sedic_kit.profiles import load_profile


def test_kv_cache_and_vllm_pool_arithmetic() -> None:
    assert kv_cache_bytes(2048) == 2 * 32 * 4096 * 2 * 2048 == GIB  # K and V, 32 layers, 4096 wide, fp16
    p = plan(load_profile("offline"))
    vllm = p.phases[0].items[0]
    assert vllm.weights == int(0.66 * RTX_4090)
    assert vllm.weights >= PARAMS["llava-hf/llava-1.5-7b-hf"] * HALF + kv_cache_bytes(2048) + VLLM_OVERHEAD


def test_phase_peak_is_context_plus_resident_plus_largest_activation() -> None:
    p = plan(load_profile("offline"))
    for phase in p.phases:
        expected = CUDA_CONTEXT + sum(i.weights for i in phase.items) + max(i.activations for i in phase.items)
        assert phase.peak == expected
    assert p.peak == max(ph.peak for ph in p.phases)
    encode, decode = p.phases
    sd = PARAMS["sd15-unet"] + PARAMS["sd15-vae"] + PARAMS["sd15-text"] + PARAMS["sd15-controlnet"]
    assert [i.name for i in encode.items] == [
        "vLLM pool (llava-hf/llava-1.5-7b-hf)", "Grounding DINO (IDEA-Research/grounding-dino-base)", "SAM (facebook/sam-vit-huge)"
    ]
    # `run` releases the encoder's models before decoding: the restorer's models are alone on the card
    assert [i.name for i in decode.items] == ["SD1.5 UNet + VAE + text encoder + tile ControlNet"]
    assert decode.peak == CUDA_CONTEXT + sd * HALF + sd_activations(768, 512) < 4 * GIB
    assert p.peak == encode.peak


def test_offline_fits_a_24_gb_card_and_the_vllm_fraction_range_is_exact() -> None:
    p = plan(load_profile("offline"))
    assert p.fits and p.peak <= 20 * GIB, p.lines()
    assert p.vllm is not None and (p.vllm.chosen, p.vllm.needed, p.vllm.allowed) == (0.66, 0.66, 0.86)
    beside = p.phases[0].peak - int(0.66 * RTX_4090)  # context, DINO, SAM, the largest activation peak
    assert int(0.86 * RTX_4090) <= RTX_4090 - beside < int(0.87 * RTX_4090)

    def at(util: float, *more: str) -> MemoryPlan:
        return plan(load_profile("offline", [f"describer.gpu_memory_utilization={util}", *more]))
    assert at(0.86).fits and not at(0.87).fits and at(0.87).peak > RTX_4090
    assert not at(0.65).fits and "below the" in at(0.65).problems[0]
    # the vllm describer's option defaults (0.85 of the card, 4096 tokens) did not fit beside SD1.5 in one phase; they do now
    assert at(0.85, "describer.max_model_len=4096").fits
    assert plan(load_profile("lite")).phases[0].items == ()  # nothing on the GPU


def test_sd_activations_grow_with_the_pixel_count() -> None:
    assert sd_activations(1536, 1024) == pytest.approx(4 * sd_activations(768, 512), rel=0.01)


def test_recorded_parameter_counts_equal_the_meta_device_counts() -> None:
    """PARAMS (used where torch/diffusers/transformers are missing) are the full-size architectures' counts."""
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from sedic_plugins.shared.full_size import builders, parameter_count

    assert sorted(builders()) == sorted(PARAMS)
    assert {name: parameter_count(name) for name in PARAMS} == PARAMS


def test_paper_plan_costs_sd21_and_diffbirs_ircontrolnet() -> None:
    decode = plan(load_profile("paper")).phases[1]
    (item,) = decode.items
    assert item.name == "SD2.1 UNet + VAE + text encoder + IRControlNet"
    parts = ("sd21-unet", "sd21-vae", "sd21-text", "sd21-ircontrolnet")
    assert sum(PARAMS[p] for p in parts) == 1_653_105_707 and PARAMS["sd21-text"] == 340_387_840
    assert item.weights == 1_653_105_707 * HALF and f"{decode.peak / GIB:.2f}" == "4.14"
    # a DiffBIR checkpoint on the default model is SD2.1's; a diffusers ControlNet keeps SD1.5
    assert plan(load_profile("offline", ["restorer.controlnet=v2.pth"])).phases[1].items[0].name.startswith("SD2.1")
    assert plan(load_profile("paper", ["restorer.model=x/sd15", "restorer.controlnet=lllyasviel/control_v11f1e_sd15_tile"])).phases[1].items[0].name.startswith("SD1.5")


def test_models_check_memory_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "check", "offline", "--memory"]) == 0
    out = capsys.readouterr().out
    assert "GPU memory plan of 'offline' at 768x512 on a 23.99 GiB card:" in out
    assert "gpu_memory_utilization 0.66" in out and ": fits" in out and "[" not in out
    assert "  decode (encoder models released): peak 3.72 GiB" in out and "(1,427,514,427 parameters)" in out
    assert "describer.gpu_memory_utilization = 0.66: vLLM needs 0.66, the encode phase leaves room for up to 0.86" in out
    assert main(["models", "check", "offline", "--memory", "--set", "describer.gpu_memory_utilization=0.5"]) == 1
    assert "does NOT fit" in capsys.readouterr().out
    assert main(["models", "check", "paper", "--memory"]) == 0
    out = capsys.readouterr().out
    assert "  decode (encoder models released): peak 4.14 GiB" in out and "SD2.1 UNet + VAE + text encoder + IRControlNet: 3.08 GiB" in out
