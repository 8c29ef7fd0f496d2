"""``models pull`` / ``models check`` on each loader's file set: pull plans from real listings,
partial snapshots, hints that get out of the state, missing libraries, loading reports."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loopback import FileServer
from sedic_kit.cli import main
from sedic_kit.errors import ModelNotFoundError
from sedic_kit.file_sets import CONTROLNET, LLAVA, PUBLISHED, missing_files, pull_plan, sd_files
from sedic_kit.install import install_hint
from sedic_kit.model_files import check, locate, pull, require
from sedic_kit.models import ModelSpec

TILE = "lllyasviel/control_v11f1e_sd15_tile"
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def snapshot(hub: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache snapshot of ``repo`` holding ``files`` (the cache's own layout)."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    root = folder / "snapshots" / "0123abcd"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text("0123abcd")
    return root


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    folder = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(folder))
    return folder


def test_the_tile_controlnet_pull_plan_includes_its_weights_file() -> None:
    files, unmet = pull_plan(list(PUBLISHED[TILE].files), CONTROLNET)
    assert files == ["config.json", "diffusion_pytorch_model.bin"] and unmet == []  # main has no safetensors
    files, _ = pull_plan(list(PUBLISHED[SD15].files), sd_files(SD15), ("tokenizer/special_tokens_map.json",))
    assert "unet/diffusion_pytorch_model.safetensors" in files and "v1-5-pruned-emaonly.safetensors" not in files
    # the one-file checkpoint stands in for the diffusers weights where a repository has only that
    single = [n for n in PUBLISHED[SD15].files if not n.endswith("diffusion_pytorch_model.safetensors") and n != "text_encoder/model.safetensors"]
    files, unmet = pull_plan(single, sd_files(SD15))
    assert files.count("v1-5-pruned-emaonly.safetensors") == 1 and unmet == []
    _, unmet = pull_plan(["config.json"], CONTROLNET)
    assert unmet == ["diffusion_pytorch_model.safetensors or diffusion_pytorch_model.safetensors.index.json or diffusion_pytorch_model.bin or diffusion_pytorch_model.bin.index.json"]


def test_a_sharded_index_brings_its_shards() -> None:
    listing = ["config.json", "preprocessor_config.json", "tokenizer_config.json", "tokenizer.model", "model.safetensors.index.json",
               "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "pytorch_model-00001-of-00003.bin"]
    files, unmet = pull_plan(listing, LLAVA)
    assert unmet == [] and "pytorch_model-00001-of-00003.bin" not in files
    assert [f for f in files if f.startswith("model-")] == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]


def test_partial_snapshots_are_reported_partial_with_what_is_missing(hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot(hub, TILE, {"config.json": b"{}"})  # 772 B in the real case: the config alone
    index = {"weight_map": {"a": "model-00001-of-00003.safetensors", "b": "model-00002-of-00003.safetensors", "c": "model-00003-of-00003.safetensors"}}
    snapshot(hub, "llava-hf/llava-1.5-7b-hf", {"config.json": b"{}", "model.safetensors.index.json": json.dumps(index).encode(),
                                               "model-00001-of-00003.safetensors": b"x"})
    tile = check(ModelSpec("restorer.controlnet", TILE, needs=CONTROLNET))
    assert tile.state == "partial" and tile.missing == ["diffusion_pytorch_model.safetensors"]
    llava = check(ModelSpec("describer.model", "llava-hf/llava-1.5-7b-hf", needs=LLAVA))
    assert llava.state == "partial"
    assert llava.missing == ["preprocessor_config.json", "tokenizer_config.json", "tokenizer.json",
                             "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]
    assert main(["models", "check", "offline", "--json"]) == 1
    rows = {r.get("model"): r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows[TILE]["status"] == "partial" and rows[TILE]["lacks"] == ["diffusion_pytorch_model.safetensors"]
    assert main(["models", "check", "offline"]) == 1
    out = capsys.readouterr().out
    assert f"partial  restorer.controlnet = {TILE} (restorer 'orag'): 2 B in 1 file at " in out
    assert "    lacks diffusion_pytorch_model.safetensors" in out
    assert out.strip().splitlines()[-1] == "fetch the missing ones where a network exists: sedic-kit models pull offline"
    # the loader says the same, and its hint is the pull that fetches the missing file (the plan above)
    with pytest.raises(ModelNotFoundError, match=r"lacks diffusion_pytorch_model.safetensors; `sedic-kit models pull PROFILE` fetches them"):
        require(ModelSpec("restorer.controlnet", TILE, needs=CONTROLNET))


def test_local_directories_are_checked_and_never_sent_to_pull(tmp_path: Path) -> None:
    (tmp_path / "cn").mkdir()
    (tmp_path / "cn" / "config.json").write_text("{}")
    (tmp_path / "cn" / "diffusion_pytorch_model.bin").write_bytes(b"")  # an interrupted copy
    spec = ModelSpec("restorer.controlnet", str(tmp_path / "cn"), needs=CONTROLNET)
    assert check(spec).state == "partial"
    with pytest.raises(ModelNotFoundError, match="copy them there or set restorer.controlnet to a complete copy"):
        pull(spec)
    (tmp_path / "cn" / "diffusion_pytorch_model.bin").write_bytes(b"weights")
    assert check(spec).state == "present" and missing_files(tmp_path / "cn", CONTROLNET) == []
    assert missing_files(tmp_path / "cn", CONTROLNET, {"diffusion_pytorch_model.bin": 9}) == ["diffusion_pytorch_model.bin (7 bytes, published 9)"]


def test_a_published_file_name_means_the_cache_not_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v2.pth").write_bytes(b"not DiffBIR")
    url = "https://huggingface.co/lxq007/DiffBIR-v2/resolve/main/v2.pth"
    with pytest.raises(ModelNotFoundError, match=r"checkpoint v2.pth is not in .*cache/models"):
        locate(ModelSpec("restorer.controlnet", "v2.pth", "url", url=url))
    assert locate(ModelSpec("restorer.controlnet", "./v2.pth", "url", url=url)) == Path("./v2.pth")
    cached = tmp_path / "cache" / "models" / "v2.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert locate(ModelSpec("restorer.controlnet", "v2.pth", "url", url=url)) == cached


def test_models_check_names_the_missing_libraries_with_their_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from sedic_kit.roles import Plugin

    hidden = {"vllm", "transformers", "diffusers"}  # a core-only environment, as far as these plugins can tell
    monkeypatch.setattr(Plugin, "missing_requirements", classmethod(lambda cls: [m for m in cls.requires if m in hidden or importlib.util.find_spec(m) is None]))
    assert main(["models", "check", "offline"]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("libraries")]
    assert len(lines) == 4, out  # describer vllm, grounder grounding-dino, segmenter sam-hf, restorer orag
    assert lines[0] == f"libraries  describer 'vllm' needs vllm which is not installed: {install_hint('vllm')}"
    assert f"libraries  restorer 'orag' needs diffusers, transformers which is not installed: {install_hint('diffusion')}" in lines
    assert "install the missing libraries with the commands above" in out


def test_a_checkpoint_with_missing_or_unexpected_keys_is_one_line_naming_the_file(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from safetensors.torch import load_file, save_file

    from sedic_kit.model_files import resolve
    from sedic_plugins.segmenters.sam import SamHFSegmenter

    broken = tmp_path / "sam"
    shutil.copytree(resolve("tiny/sam", "x"), broken)
    weights = load_file(broken / "model.safetensors")
    first = sorted(weights)[0]
    weights["extra.weight"] = weights.pop(first)
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelNotFoundError) as err:
        SamHFSegmenter(model=str(broken), device="cpu").load()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"segmenter.model: the checkpoint at {broken} does not fit its model:")
    assert f"1 missing keys (first: {first})" in message and "1 unexpected keys (first: extra.weight)" in message


def test_pull_offline_of_a_hub_id_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = "from sedic_kit.model_files import pull; from sedic_kit.file_sets import CONTROLNET; from sedic_kit.models import ModelSpec\n" \
           f"pull(ModelSpec('restorer.controlnet', '{TILE}', needs=CONTROLNET))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "HF_HUB_CACHE": str(tmp_path)})
    assert done.returncode == 1 and f"restorer.controlnet: cannot list the files of '{TILE}'" in done.stderr.strip().splitlines()[-1]


def test_pull_of_a_url_checkpoint_resumes_a_cut_transfer_and_lands_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint URL (DiffBIR's ``v2.pth``, SAM's, CompressAI's) goes through the resumable
    downloader: a transfer cut mid-file is resumed with a Range request, nothing partial is left."""
    monkeypatch.setenv("SEDIC_CACHE", str(tmp_path / "cache"))  # the session's cache may hold a v2.pth already (test_orag)
    data = bytes(range(256)) * 64
    with FileServer({"v2.pth": data}) as server:
        server.cuts, server.cut_at = 1, 1000
        spec = ModelSpec("restorer.controlnet", "v2.pth", source="url", url=f"{server.url}/v2.pth")
        target = pull(spec)
        assert target.read_bytes() == data and locate(spec) == target
        assert [r for _, r in server.requests] == [None, "bytes=1000-"]
        assert not list(target.parent.glob("*.part"))
        assert pull(spec) == target and len(server.requests) == 2  # cached: nothing fetched again
