"""Evaluation: metrics against independent code, unavailable metrics, outputs, resume, accelerate, report."""

from __future__ import annotations

import csv
import html
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from sedic_kit.cli import main
from sedic_kit.eval.metrics import ALWAYS, IMAGE_METRICS, SET_METRICS, MetricSuite
from sedic_kit.eval.runner import VOLATILE_KEYS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "images"


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="module")
def offline_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Empty weight caches (for this process and the CLI subprocesses): no learned metric has its weights, as on CI."""
    cache = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(cache / "torch"))
        mp.setenv("HF_HUB_CACHE", str(cache / "hf"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("SEDIC_CACHE", str(cache / "sedic"))
        yield


def small_kodak(directory: Path) -> Path:
    """The two example images at 1/3 size (252x168) with their sidecar descriptions."""
    directory.mkdir(parents=True, exist_ok=True)
    for stem in ("kodim03", "kodim23"):
        with Image.open(EXAMPLES / f"{stem}.png") as im:
            im.convert("RGB").resize((252, 168), Image.Resampling.LANCZOS).save(directory / f"{stem}.png")
        shutil.copy(EXAMPLES / f"{stem}.json", directory / f"{stem}.json")
    return directory


def tiles(directory: Path, count: int = 8) -> Path:
    """``count`` distinct 192x176 crops of the example images."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(EXAMPLES / f"{s}.png").convert("RGB") for s in ("kodim03", "kodim23")]
    for i in range(count):
        x, y = 60 * (i // 2), 40 * (i % 4)
        sources[i % 2].crop((x, y, x + 192, y + 176)).save(directory / f"tile{i}.png")
    return directory


@pytest.fixture(scope="module")
def tile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiles(tmp_path_factory.mktemp("tiles"))


def stable(summary: dict) -> dict:
    """A results.json without what legitimately varies between runs (timings, output dir, process)."""
    out = {k: v for k, v in summary.items() if k != "dir"}
    out["results"] = {k: v for k, v in summary["results"].items() if not k.endswith("_time")}
    out["images"] = [{k: v for k, v in r.items() if k not in VOLATILE_KEYS} for r in summary["images"]]
    return out


def cli(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sedic_kit", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def single_run(tile_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """lite-webp on the tiles, one process, uninterrupted: the reference for resume and accelerate."""
    out = tmp_path_factory.mktemp("single")
    proc = cli("eval", "--profile", "lite-webp", "--data", str(tile_dir), "--out", str(out), "--dataset", "none")
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "lite-webp" / "results.json").read_text())


# -- independent metric implementations ----------------------------------------------------
def psnr_ref(a: np.ndarray, b: np.ndarray) -> float:
    sse = int(((a.astype(np.int64) - b.astype(np.int64)) ** 2).sum())
    return 10 * math.log10(255**2 * a.size / sse)


def gaussian_filter_valid(x: np.ndarray) -> np.ndarray:
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    rows = sliding_window_view(x, 11, axis=0) @ g
    return sliding_window_view(rows, 11, axis=1) @ g


def ms_ssim_ref(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2003 MS-SSIM in CompressAI's convention: per channel (then averaged), valid
    Gaussian filtering, 2x2 average downsampling with one leading zero for odd sides."""
    betas = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for x, y in zip(a.astype(np.float64).transpose(2, 0, 1), b.astype(np.float64).transpose(2, 0, 1)):
        value = 1.0
        for level, beta in enumerate(betas):
            mx, my = gaussian_filter_valid(x), gaussian_filter_valid(y)
            cs = (2 * (gaussian_filter_valid(x * y) - mx * my) + c2) / (
                gaussian_filter_valid(x * x) - mx * mx + gaussian_filter_valid(y * y) - my * my + c2
            )
            if level == len(betas) - 1:
                value *= max(float(np.mean(cs * (2 * mx * my + c1) / (mx * mx + my * my + c1))), 0.0) ** beta
                break
            value *= max(float(np.mean(cs)), 0.0) ** beta
            x, y = halve(x), halve(y)
        values.append(value)
    return float(np.mean(values))


def halve(x: np.ndarray) -> np.ndarray:
    for axis in (0, 1):
        if x.shape[axis] % 2:
            x = np.concatenate([np.zeros_like(np.take(x, [0], axis=axis)), x], axis=axis)
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def test_psnr_and_ms_ssim_match_independent_computation() -> None:
    rng = np.random.default_rng(7)
    suite = MetricSuite([])
    assert list(suite.image) == list(ALWAYS)
    with Image.open(EXAMPLES / "kodim23.png") as im:
        original = np.asarray(im.convert("RGB").resize((203, 187)))
    for noise in (3, 20):
        distorted = np.clip(original.astype(int) + rng.integers(-noise, noise + 1, original.shape), 0, 255).astype(np.uint8)
        scores = suite.score(Image.fromarray(distorted), Image.fromarray(original))
        assert scores["psnr-rgb"] == pytest.approx(psnr_ref(distorted, original), abs=1e-6)
        assert scores["ms-ssim-rgb"] == pytest.approx(ms_ssim_ref(distorted, original), abs=1e-6)
    same = suite.score(Image.fromarray(original), Image.fromarray(original))
    assert same["psnr-rgb"] is None and same["ms-ssim-rgb"] == pytest.approx(1.0, abs=1e-9)
    tiny = suite.score(Image.new("RGB", (100, 300)), Image.new("RGB", (100, 300), "white"))
    assert tiny["ms-ssim-rgb"] is None  # undefined below 161 pixels a side


def test_learned_metrics_without_weights_are_unavailable_with_reasons() -> None:
    suite = MetricSuite()
    assert set(suite.image) == set(ALWAYS) and not suite.set
    assert set(suite.unavailable) == (set(IMAGE_METRICS) | {"fid", "kid"}) - set(ALWAYS)  # the whole-image FID/KID only by name
    assert set(MetricSuite(["fid-whole", "kid-whole"]).unavailable) == {"fid-whole", "kid-whole"} <= set(SET_METRICS)
    for key, reason in suite.unavailable.items():
        assert "\n" not in reason
        assert re.search(r"needs \w+|weights|not in the Hugging Face cache|cannot be loaded", reason), (key, reason)
    assert "openai/clip-vit-large-patch14" in suite.unavailable["clipsim"]


def test_clipsim_runs_through_the_real_loading_path_with_a_tiny_clip() -> None:
    suite = MetricSuite(["clipsim"], clip_model="tiny/clip")
    assert "clipsim" in suite.image, suite.unavailable
    with Image.open(EXAMPLES / "kodim03.png") as a, Image.open(EXAMPLES / "kodim23.png") as b:
        a, b = a.convert("RGB"), b.convert("RGB").resize(a.size)
        assert suite.score(a, a)["clipsim"] == pytest.approx(1.0, abs=1e-6)
        assert suite.score(b, a)["clipsim"] < 0.9999


# -- outputs -------------------------------------------------------------------------------
def test_compare_writes_json_csv_plots_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = small_kodak(tmp_path / "kodak")
    out = tmp_path / "out"
    assert main(["compare", "--profiles", "lite,lite-webp", "--data", str(data), "--out", str(out), "--dataset", "kodak"]) == 0
    combined = json.loads((out / "compare.json").read_text())
    assert combined["dataset"] == "kodak"  # named by --dataset
    assert [r["name"] for r in combined["results"]] == ["lite", "lite-webp"]
    assert combined["quoted"]["points"] == {} and combined["setup"]["paper_points"] == "2 images, not the paper's 24"
    realism = combined["setup"]["realism"]
    assert realism["name"] == "patch-256/shift-128" and realism["unavailable"] == ["fid", "kid"] and realism["seed"] == 0
    assert realism["samples"] == 0 and realism["flags"]  # 252x168 images hold no 256 px patch
    for name in ("lite", "lite-webp"):
        summary = json.loads((out / name / "results.json").read_text())
        assert {"name", "description", "results"} <= set(summary)
        res = summary["results"]
        assert all(isinstance(v, list) and len(v) == 1 for v in res.values())
        assert res["lpips"] == [None] and "lpips" in summary["unavailable"]
        sections = sum(v[0] for k, v in res.items() if k.startswith("bpp-"))
        assert sections == pytest.approx(res["bpp"][0], rel=1e-12)
        for r in summary["images"]:
            sedic = out / name / "sedic" / f"{Path(r['image']).stem}.sedic"
            assert sum(r["bits"].values()) == 8 * sedic.stat().st_size
            assert r["bpp"] == 8 * sedic.stat().st_size / (252 * 168)
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["software"]["packages"]["torch"] and manifest["plugins"]["reference_codec"]["version"] >= 1
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["profile"], r["image"]) for r in rows] == [
        (p, i) for p in ("lite", "lite-webp") for i in ("kodim03.png", "kodim23.png", "mean")
    ]
    assert float(rows[0]["psnr-rgb"]) > 15 and rows[0]["lpips"] == ""
    for plot in ("psnr-rgb", "ms-ssim-rgb", "bit-allocation"):
        with Image.open(out / "plots" / f"{plot}.png") as im:
            assert im.size[0] > 300
    page = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 3 + 2 * 6  # 2 RD plots + bits, per image: original + 2 x (reference, reconstruction) + lite's masks
    assert all((out / s).is_file() for s in sources)
    unavailable = {k: v for name in ("lite", "lite-webp") for k, v in json.loads((out / name / "results.json").read_text())["unavailable"].items()}
    assert "Unavailable metrics" in page and all(html.escape(reason) in page for reason in unavailable.values())  # with their reasons
    assert "report:" in capsys.readouterr().out


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: Path, shot: Path, home: Path, size: str = "1200,1600") -> str:
    """Screenshot ``page`` in headless Chromium; return its console lines (errors of the image check)."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",  # type: ignore[list-item]
         f"--screenshot={shot}", f"--window-size={size}", page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(home)},
    )
    assert shot.is_file(), proc.stderr[-2000:]
    return "\n".join(line for line in proc.stderr.splitlines() if ":CONSOLE" in line)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    data = small_kodak(tmp_path / "kodak")
    out = tmp_path / "out"
    assert main(["eval", "--profile", "lite-webp", "--data", str(data), "--out", str(out)]) == 0
    shot = tmp_path / "report.png"
    assert render(out / "report.html", shot, tmp_path) == ""
    with Image.open(shot) as im:
        assert im.size == (1200, 1600) and len(im.convert("RGB").getcolors(1 << 20) or []) > 200
    next((out / "report").glob("*.png")).unlink()  # the check must see a broken image
    assert "image failed to load" in render(out / "report.html", tmp_path / "broken.png", tmp_path)


def test_rate_sweep_gives_curves_bd_table_and_resumes_per_point(tmp_path: Path) -> None:
    data = small_kodak(tmp_path / "kodak")
    out = tmp_path / "out"
    args = ["compare", "--profiles", "lite,lite-webp,avif-only", "--data", str(data), "--out", str(out), "--dataset", "kodak",
            "--target-bpp", "0.4,0.25", "--anchor", "avif-only", "--metrics", "psnr-rgb",
            "--set", "lite:reference_codec.speed=8", "--set", "avif-only:reference_codec.speed=8"]  # fast AVIF for the test
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    combined = json.loads((out / "compare.json").read_text())
    assert combined["setup"]["targets"] == [0.25, 0.4] and combined["setup"]["images"] == 2
    assert combined["setup"]["paper_set_images"] == 24 and combined["setup"]["command"].startswith("sedic-kit compare")
    for curve in combined["results"]:  # compressai shape: one list entry per rate
        assert curve["targets"] == [0.25, 0.4] and len(curve["results"]["bpp"]) == len(curve["results"]["psnr-rgb"]) == 2
        for target, mean in zip(curve["targets"], curve["results"]["bpp"]):
            point = out / curve["name"] / f"bpp-{target:g}"
            records = [json.loads(p.read_text()) for p in sorted((point / "records").glob("*.json"))]
            assert [r["image"] for r in records] == ["kodim03.png", "kodim23.png"]  # one record per (profile, rate, image)
            for r in records:  # every point is a real file whose size is its bpp, at or under the target
                size = (point / "sedic" / f"{Path(r['image']).stem}.sedic").stat().st_size
                assert r["bpp"] == 8 * size / (252 * 168) <= target and r["target_bpp"] == target
            assert mean == pytest.approx(sum(r["bpp"] for r in records) / 2, rel=1e-12)
    bd = {(row["profile"], row["metric"]): row for row in combined["bd"]}
    assert set(bd) == {(p, m) for p in ("lite", "lite-webp") for m in ("psnr-rgb", "ms-ssim-rgb")} and all(r["anchor"] == "avif-only" for r in bd.values())
    assert all(isinstance(r["bd_rate"], float) or r["note"] for r in bd.values())
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["image"] for r in rows if r["profile"] == "lite"][-2:] == ["BD-rate % vs avif-only", "BD-metric vs avif-only"]
    assert len([r for r in rows if r["image"] == "mean"]) == 6
    printed = first.stdout
    assert "Mean over images" in printed and "Bjontegaard deltas vs avif-only" in printed
    assert f"plot:bit-allocation: {out / 'plots' / 'bit-allocation.png'}" in printed.replace("\n", "")
    page = (out / "report.html").read_text()
    assert str(data) in page and "2 of the paper's 24 kodak images (not the paper's set" in page and "sedic-kit compare" in page
    assert "Bjontegaard deltas vs avif-only" in page
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 3 + 2 * (1 + 6 + 2) and all((out / s).is_file() for s in sources)  # 2 RD + bits; original, 6 recons, lite masks at 2 rates

    (out / "lite" / "bpp-0.4" / "records" / "kodim23.json").unlink()  # as if killed before that image finished
    rerun = cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "lite @ 0.4 bpp: 1 of 2 images already done, 1 to evaluate" in rerun.stderr
    assert rerun.stderr.count("2 of 2 images already done") == 5
    again = json.loads((out / "compare.json").read_text())
    assert [c["results"]["bpp"] for c in again["results"]] == [c["results"]["bpp"] for c in combined["results"]]
    if CHROMIUM is not None:
        shot = tmp_path / "sweep.png"
        assert render(out / "report.html", shot, tmp_path, "1400,1800") == ""


def test_target_and_anchor_options_fail_with_one_line(tmp_path: Path) -> None:
    data = small_kodak(tmp_path / "kodak")
    bad = cli("compare", "--profiles", "lite,lite-webp", "--data", str(data), "--target-bpp", "0.02,x")
    assert bad.returncode == 1 and "--target-bpp: expected comma-separated numbers" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("compare", "--profiles", "lite,lite-webp", "--data", str(data), "--anchor", "avif-only")
    assert bad.returncode == 1 and "--anchor: 'avif-only' is not one of --profiles (lite, lite-webp)" in bad.stderr


# -- batch runs ----------------------------------------------------------------------------
def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_run_resumes_with_identical_results(tile_dir: Path, single_run: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [sys.executable, "-m", "sedic_kit", "eval", "--profile", "lite-webp", "--data", str(tile_dir), "--out", str(out), "--dataset", "none"]
    # Ctrl-C's default handling in the child even when this suite runs where SIGINT is ignored
    # (a background job of a non-interactive shell: the child would inherit the ignore)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    records = out / "lite-webp" / "records"
    deadline = time.monotonic() + 120
    while not (records.is_dir() and any(records.glob("*.json"))) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not list(out.rglob("*.tmp")), "an interrupted run left a partial file"
    assert not (out / "lite-webp" / "results.json").exists()
    done = sorted(records.glob("*.json"))
    assert 0 < len(done) < 8
    for path in done:
        json.loads(path.read_text())  # complete records only
    first = {p.name: p.read_text() for p in done}

    rerun = cli("eval", "--profile", "lite-webp", "--data", str(tile_dir), "--out", str(out), "--dataset", "none")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done)} of 8 images already done, {8 - len(done)} to evaluate" in rerun.stderr
    assert {p: (records / p).read_text() for p in first} == first  # finished images were not redone
    manifest = json.loads((out / "lite-webp" / "manifest.json").read_text())
    assert manifest["evaluated_this_run"] == 8 - len(done)
    assert stable(json.loads((out / "lite-webp" / "results.json").read_text())) == stable(single_run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_accelerate_run_matches_one_process(tile_dir: Path, single_run: dict, tmp_path: Path) -> None:
    accelerate = Path(sys.executable).with_name("accelerate")
    out = tmp_path / "out"
    # accelerate's launcher runs torchrun; with no GPU the ranks join a gloo group on the CPU.
    proc = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "sedic_kit",
         "eval", "--profile", "lite-webp", "--data", str(tile_dir), "--out", str(out), "--dataset", "none"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "lite-webp" / "results.json").read_text())
    assert sorted({r["process"] for r in summary["images"]}) == [0, 1]
    manifest = json.loads((out / "lite-webp" / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["backend"] == "gloo"
    assert stable(summary) == stable(single_run)
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()


def test_dataset_protocol_and_per_profile_overrides(tmp_path: Path) -> None:
    from sedic_kit.eval.compare import overrides_for
    from sedic_kit.eval.datasets import crop768, prepare

    wide = Image.fromarray(np.tile(np.arange(1000, dtype=np.uint8)[None, :, None], (800, 1, 3)))
    out = crop768(wide)
    assert out.size == (768, 768)
    assert np.asarray(out)[0, 0, 0] == np.asarray(wide.resize((960, 768), Image.Resampling.BICUBIC))[0, 96, 0]
    (tmp_path / "DIV2K_valid_HR").mkdir()
    wide.save(tmp_path / "DIV2K_valid_HR" / "0801.png")
    source = prepare(tmp_path / "DIV2K_valid_HR" / "0801.png", "crop768", 10**8)
    assert source.size == (768, 768) and source.path is not None
    sets = ["restorer.filter=bicubic", "lite:describer.path=/a:b", "other:segmenter.iterations=2"]
    assert overrides_for("lite", sets) == ["restorer.filter=bicubic", "describer.path=/a:b"]
    assert overrides_for("lite-webp", sets) == ["restorer.filter=bicubic"]


# -- two phases, missing semantics, a changed setup ------------------------------------------
def test_eval_encodes_every_image_then_releases_the_encoder_then_decodes(tmp_path: Path) -> None:
    from sedic_kit.eval.runner import EvalConfig, Evaluation
    from sedic_kit.roles import ENCODER_ROLES

    evaluation = Evaluation(EvalConfig(profile="lite", data=small_kodak(tmp_path / "kodak"), out=tmp_path / "out", metrics=["psnr-rgb"]))
    codec, calls = evaluation.codec, []
    encode, decode, release = codec.encode, codec.decode_detailed, codec.release
    codec.encode = lambda *a, **k: calls.append("encode") or encode(*a, **k)  # type: ignore[method-assign]
    codec.decode_detailed = lambda *a, **k: calls.append("decode") or decode(*a, **k)  # type: ignore[method-assign]
    codec.release = lambda *roles: calls.append(("release", roles)) or release(*roles)  # type: ignore[method-assign]
    summary = evaluation.run()
    assert calls == ["encode", "encode", ("release", tuple(ENCODER_ROLES)), "decode", "decode"]
    assert summary is not None and all(r["semantics"] and r["caption"] and r["descriptions"] for r in summary["images"])
    assert all((tmp_path / "out" / "lite" / "masks" / f"{s}.png").is_file() for s in ("kodim03", "kodim23"))


def test_semantics_missing_is_warned_and_a_changed_setup_is_refused(tmp_path: Path) -> None:
    described = small_kodak(tmp_path / "described")
    bare = tmp_path / "bare"  # the same images without their sidecar descriptions
    bare.mkdir()
    for png in described.glob("*.png"):
        shutil.copy(png, bare / png.name)
    out = tmp_path / "out"
    args = ["compare", "--profiles", "lite,avif-only", "--data", str(bare), "--out", str(out), "--dataset", "none", "--metrics", "psnr-rgb"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "warning: lite: coded without semantics: describer 'sidecar' gave no caption and no objects" in first.stderr
    assert "[2 of 2 images: kodim03.png, kodim23.png]" in first.stderr and "warning: avif-only" not in first.stderr
    records = {p.name: p.read_bytes() for p in sorted((out / "lite" / "records").glob("*.json"))}
    assert [json.loads(r)["semantics"] for r in records.values()] == [False, False]
    summary = json.loads((out / "lite" / "results.json").read_text())
    assert any(w.startswith("coded without semantics") for w in summary["warnings"])
    combined = json.loads((out / "compare.json").read_text())
    assert combined["results"][0]["warnings"][0] == summary["warnings"] and combined["results"][1]["warnings"] == [[]]
    page = (out / "report.html").read_text()
    assert "<h2>Warnings</h2>" in page and "lite: coded without semantics" in page and "<td class=warn>0</td>" in page

    fixed = cli(*args, "--set", f"lite:describer.path={described}")  # another setup into the same --out
    assert fixed.returncode == 1 and "Traceback" not in fixed.stderr
    (line,) = fixed.stderr.strip().splitlines()[-1:]
    assert f"holds 2 records of another setup (profile.describer.path: None -> '{described}'); pass --force" in line
    assert {p.name: p.read_bytes() for p in sorted((out / "lite" / "records").glob("*.json"))} == records  # nothing replaced

    forced = cli(*args, "--set", f"lite:describer.path={described}", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "coded without semantics" not in forced.stderr and "2 of 2 images already done" in forced.stderr  # avif-only kept
    assert all(json.loads(p.read_text())["semantics"] for p in (out / "lite" / "records").glob("*.json"))


def test_fid_protocol_options_reach_compare_json(tmp_path: Path) -> None:
    data = small_kodak(tmp_path / "kodak")
    out = tmp_path / "out"
    proc = cli("compare", "--profiles", "lite-webp", "--data", str(data), "--out", str(out), "--metrics", "psnr-rgb,fid,kid",
               "--fid-patch", "128", "--fid-shift", "32", "--kid-seed", "3")
    assert proc.returncode == 0, proc.stderr
    realism = json.loads((out / "compare.json").read_text())["setup"]["realism"]
    assert (realism["name"], realism["patch"], realism["shift"], realism["seed"]) == ("patch-128/shift-32", 128, 32, 3)
    assert realism["samples"] == 2  # 252x168: one 128 px patch each, no shifted grid (168 < 1.5 x 128)
    assert "FID/KID protocol: patch-128/shift-32 (2 samples; not computed here)" in proc.stdout
    bad = cli("compare", "--profiles", "lite-webp", "--data", str(data), "--out", str(out), "--fid-shift", "256")
    assert bad.returncode == 1 and "--fid-shift: expected less than the patch (256 px), got 256" in bad.stderr
    assert "Traceback" not in bad.stderr
