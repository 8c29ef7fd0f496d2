"""``sedic-kit data list/pull/verify`` against a real HTTP server on 127.0.0.1 with Range support,
and ``--data`` taking the protocol from a pulled set's manifest."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loopback import FileServer
from sedic_kit.cli import main
from sedic_kit.download import Remote
from sedic_kit.eval.datasets import KODAK_URL, SETS, DatasetSpec, Part, crop768, pixel_sha256
from sedic_kit.eval.manifest import read_manifest, resolve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "images"



def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def photo(seed: int, size: tuple[int, int] = (820, 790)) -> Image.Image:
    """A smooth image with some noise (small as PNG, unlike pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([(x * (seed + 1)) % 256, (y * 2) % 256, ((x + y) // 3) % 256], axis=-1)
    return Image.fromarray((base + rng.integers(0, 8, base.shape)).clip(0, 255).astype(np.uint8))


def archive(images: dict[str, bytes], folder: str = "DIV2K_valid_HR") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in images.items():
            zf.writestr(f"{folder}/{name}", data)
        zf.writestr("__MACOSX/._0801.png", b"resource fork")  # ignored: not an image of the set
    return buf.getvalue()


def zip_spec(data: bytes, images: int, sha256: str | None = None) -> DatasetSpec:
    """DIV2K's definition with the test archive's size and SHA-256 in place of the official ones."""
    remote = Remote(SETS["div2k"].parts[0].remote.url, len(data), sha256 or hashlib.sha256(data).hexdigest(), "the test's list")
    return replace(SETS["div2k"], parts=(Part(remote, images, archive=True),))


def pull_div2k(monkeypatch: pytest.MonkeyPatch, data: bytes, images: int, *args: str, sha256: str | None = None) -> int:
    """``data pull div2k`` from a local server serving ``data``, checked against its own size and SHA-256."""
    monkeypatch.setitem(SETS, "div2k", zip_spec(data, images, sha256))
    with FileServer({"DIV2K_valid_HR.zip": data}) as server:
        return main(["data", "pull", "div2k", "--mirror", server.url, *args])


@pytest.fixture(scope="module")
def div2k_zip() -> tuple[bytes, dict[str, Image.Image]]:
    images = {f"08{i:02d}.png": photo(i) for i in (1, 2, 3)}
    return archive({n: png(im) for n, im in images.items()}), images


@pytest.fixture(autouse=True)
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "data-root"
    monkeypatch.setenv("SEDIC_DATA", str(root))
    yield root


def test_kodak_pixel_hashes_match_the_shipped_examples() -> None:
    for stem in ("kodim03", "kodim23"):
        with Image.open(EXAMPLES / f"{stem}.png") as im:
            assert pixel_sha256(im) == SETS["kodak"].pixel_sha256[f"{stem}.png"]
    assert SETS["kodak"].images == 24 and SETS["div2k"].images == 100 and SETS["clic2020"].images == 428
    assert all(p.remote.sha256 and p.remote.size and p.remote.checksum_source for s in ("div2k", "clic2020") for p in SETS[s].parts)


def test_pull_single_files_from_a_mirror_then_verify_list_and_evaluate_by_name(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kodak's definition cut to the two example images (their real pixel hashes), fetched file by file."""
    files = {f"{s}.png": (EXAMPLES / f"{s}.png").read_bytes() for s in ("kodim03", "kodim23")}
    monkeypatch.setitem(SETS, "kodak", replace(SETS["kodak"], parts=tuple(Part(Remote(KODAK_URL.format(i))) for i in (3, 23))))
    with FileServer(files) as server:
        assert main(["data", "pull", "kodak", "--mirror", server.url]) == 0
    assert [r for r, _ in server.requests] == ["kodim03.png", "kodim23.png"]
    target = data_env / "kodak"
    manifest = read_manifest(target)
    assert manifest is not None and manifest.protocol == "as-is" and manifest.prepared is None and manifest.paper_set == "kodak"
    assert [(e.name, e.width, e.height) for e in manifest.images] == [("kodim03.png", 768, 512), ("kodim23.png", 768, 512)]
    assert [s.url for s in manifest.sources] == [f"{server.url}/kodim03.png", f"{server.url}/kodim23.png"]
    assert (target / "original" / "kodim03.png").read_bytes() == files["kodim03.png"]
    assert not (data_env / ".downloads" / "kodak").exists() and sorted(p.name for p in data_env.iterdir()) == [".downloads", "kodak"]
    assert "kodak: 2 images (as-is)" in capsys.readouterr().out

    assert main(["data", "verify", "kodak"]) == 0
    assert "all 2 images match" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"kodak .* 2 .* as-is .* MB", listing) and re.search(r"div2k .* 100 .* crop768 .* 449\.0 MB .* not pulled", listing)
    assert main(["data", "pull", "kodak"]) == 0  # already there: nothing fetched
    assert "already pulled" in capsys.readouterr().out

    files["kodim23.png"] = files["kodim03.png"]  # a mirror with the wrong picture under one name
    with FileServer(files) as server:
        assert main(["data", "pull", "kodak", "--root", str(data_env / "other"), "--mirror", server.url]) == 1
    assert "kodim23.png from http://127.0.0.1:" in capsys.readouterr().err
    assert sorted(p.name for p in (data_env / "other").rglob("*")) == [".downloads", "kodak", "kodim03.png"]  # the bad one is deleted

    chosen = resolve("kodak")
    assert (chosen.images, chosen.protocol, chosen.paper_set) == (target / "original", "as-is", "kodak")
    assert resolve(str(target), "crop768").protocol == "crop768"


def test_an_archive_cut_mid_transfer_resumes_and_is_cropped_once(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, div2k_zip: tuple[bytes, dict[str, Image.Image]]
) -> None:
    data, images = div2k_zip
    monkeypatch.setitem(SETS, "div2k", zip_spec(data, 3))
    with FileServer({"DIV2K_valid_HR.zip": data}) as server:
        server.cuts, server.cut_at = 1, len(data) // 2
        assert main(["data", "pull", "div2k", "--mirror", server.url + "/"]) == 0
    assert server.requests == [("DIV2K_valid_HR.zip", None), ("DIV2K_valid_HR.zip", f"bytes={len(data) // 2}-")]
    target = data_env / "div2k"
    manifest = read_manifest(target)
    assert manifest is not None and manifest.protocol == "crop768" and manifest.prepared == "crop768"
    assert manifest.sources[0].sha256 == hashlib.sha256(data).hexdigest() and manifest.sources[0].checksum_source == "the test's list"
    for entry in manifest.images:
        with Image.open(target / "original" / entry.name) as orig, Image.open(target / "crop768" / entry.name) as crop:
            assert pixel_sha256(orig) == entry.pixel_sha256 == pixel_sha256(images[entry.name])
            assert crop.size == (768, 768) and pixel_sha256(crop) == entry.prepared_sha256 == pixel_sha256(crop768(images[entry.name]))
    assert sorted(p.name for p in (target / "original").iterdir()) == ["0801.png", "0802.png", "0803.png"]
    chosen = resolve("div2k")
    assert (chosen.images, chosen.protocol, chosen.paper_set) == (target / "crop768", "crop768", "div2k")
    assert resolve(str(target), "as-is").images == target / "original"


def test_a_wrong_checksum_is_one_error_and_leaves_nothing(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], div2k_zip: tuple[bytes, dict[str, Image.Image]]
) -> None:
    data, _ = div2k_zip
    assert pull_div2k(monkeypatch, data, 3, sha256="0" * 64) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[0] == f"div2k: DIV2K_valid_HR.zip: downloading, {len(data) / 1e6:.1f} MB"  # plain progress off a terminal
    assert [line.startswith("Error:") for line in err.splitlines()] == [False, True] and "Traceback" not in err
    assert f"SHA-256 {hashlib.sha256(data).hexdigest()}, expected {'0' * 64} (the test's list)" in err
    assert "nothing was extracted" in err
    assert [p for p in data_env.rglob("*") if p.is_file()] == [] and not (data_env / "div2k").exists()


def test_a_download_cut_every_time_resumes_on_the_next_run(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], div2k_zip: tuple[bytes, dict[str, Image.Image]]
) -> None:
    data, _ = div2k_zip
    monkeypatch.setitem(SETS, "div2k", zip_spec(data, 3))
    third = len(data) // 3
    with FileServer({"DIV2K_valid_HR.zip": data}) as server:
        server.cuts, server.cut_at = 10, third // 3
        assert main(["data", "pull", "div2k", "--mirror", server.url]) == 1
        err = capsys.readouterr().err
        assert err.count("Error:") == 1 and "stopped at" in err and "rerun the same command to resume" in err
        part = data_env / ".downloads" / "div2k" / "DIV2K_valid_HR.zip.part"
        assert part.stat().st_size == 3 * (third // 3) and not (data_env / "div2k").exists()
        server.cuts = 0
        assert main(["data", "pull", "div2k", "--mirror", server.url]) == 0
        assert f"resuming at {3 * (third // 3) / 1e6:.1f} MB" in capsys.readouterr().err
    assert server.requests[3] == ("DIV2K_valid_HR.zip", f"bytes={3 * (third // 3)}-") and len(server.requests) == 4
    assert len(read_manifest(data_env / "div2k").images) == 3 and not part.exists()  # type: ignore[union-attr]


def test_a_server_ignoring_range_sends_the_file_again(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, div2k_zip: tuple[bytes, dict[str, Image.Image]]
) -> None:
    data, _ = div2k_zip
    monkeypatch.setitem(SETS, "div2k", zip_spec(data, 3))
    part = data_env / ".downloads" / "div2k" / "DIV2K_valid_HR.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes that a resume would keep")
    with FileServer({"DIV2K_valid_HR.zip": data}) as server:
        server.ignore_range = True
        assert main(["data", "pull", "div2k", "--mirror", server.url]) == 0
    assert server.requests == [("DIV2K_valid_HR.zip", "bytes=36-")]
    assert read_manifest(data_env / "div2k") is not None


def test_an_archive_with_the_wrong_image_count_extracts_nothing(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], div2k_zip: tuple[bytes, dict[str, Image.Image]]
) -> None:
    data, _ = div2k_zip
    assert pull_div2k(monkeypatch, data, 4, "--keep-downloads") == 1
    assert "DIV2K_valid_HR.zip: 3 images, expected 4; nothing was extracted" in capsys.readouterr().err
    assert not (data_env / "div2k").exists() and not list(data_env.glob(".div2k.*"))
    assert (data_env / ".downloads" / "div2k" / "DIV2K_valid_HR.zip").read_bytes() == data  # checked download kept


def test_eval_by_set_name_uses_the_pulled_crops_and_the_manifests_protocol(
    data_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pull_div2k(monkeypatch, archive({"0801.png": png(photo(4))}), 1) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--profile", "lite-webp", "--data", "div2k", "--out", str(out), "--metrics", "psnr-rgb"]) == 0
    summary = json.loads((out / "lite-webp" / "results.json").read_text())
    assert summary["dataset"] == {"path": str(data_env / "div2k" / "crop768"), "protocol": "crop768", "images": 1}
    assert all((r["width"], r["height"]) == (768, 768) and not any("cropped" in n for n in r["notes"]) for r in summary["images"])
    combined = json.loads((out / "compare.json").read_text())
    assert combined["dataset"] == "div2k" and combined["setup"]["paper_set_images"] == 100  # 1 of the paper's 100


def test_verify_finds_a_changed_pixel(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], div2k_zip: tuple[bytes, dict[str, Image.Image]]
) -> None:
    assert pull_div2k(monkeypatch, div2k_zip[0], 3) == 0
    target = data_env / "div2k"
    assert main(["data", "verify", str(target)]) == 0
    capsys.readouterr()
    for sub in ("original", "crop768"):
        path = target / sub / "0802.png"
        with Image.open(path) as im:
            changed = im.convert("RGB")
        changed.putpixel((5, 7), tuple(255 - v for v in changed.getpixel((5, 7))))  # type: ignore[union-attr]
        changed.save(path)
    (target / "crop768" / "0803.png").unlink()
    assert main(["data", "verify", str(target)]) == 1
    err = capsys.readouterr().err
    assert "original/0802.png: pixels differ from the manifest's" in err and "crop768/0802.png: pixels differ" in err
    assert "crop768/0803.png: missing" in err and "3 problems in 3 images" in err
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["images"][0]["name"] = "../../outside.png"  # a manifest never points outside its set
    (target / "manifest.json").write_text(json.dumps(manifest))
    assert main(["data", "verify", str(target)]) == 1
    assert "manifest.json: not a sedic-kit data manifest" in capsys.readouterr().err


def test_verify_a_plain_folder_against_the_published_kodak_hashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for stem in ("kodim03", "kodim23"):
        (folder / f"{stem}.png").write_bytes((EXAMPLES / f"{stem}.png").read_bytes())
    with Image.open(EXAMPLES / "kodim03.png") as im:
        im.save(folder / "kodim23.png")  # the wrong picture under kodim23's name
    assert main(["data", "verify", str(folder), "--set", "kodak"]) == 1
    err = capsys.readouterr().err
    assert "kodim23.png: pixels differ from the published set's" in err and "kodim01.png: missing" in err
    assert "kodim03.png" not in err and "23 problems in 24 images" in err
    assert main(["data", "verify", str(folder)]) == 1
    assert "has no manifest.json: name its set with --set" in capsys.readouterr().err
    assert main(["data", "verify", str(folder), "--set", "div2k"]) == 1
    assert "div2k publishes no per-image pixel hashes" in capsys.readouterr().err


def test_data_protocol_comes_from_the_manifest_never_the_folder_name(data_env: Path, tmp_path: Path) -> None:
    named = tmp_path / "CLIC2021_valid"
    named.mkdir()
    photo(1).save(named / "a.png")
    plain = resolve(str(named))
    assert (plain.protocol, plain.paper_set) == ("as-is", None) and "has no manifest.json (not a pulled set)" in plain.note
    assert resolve(str(named), "crop768").protocol == "crop768"
    with pytest.raises(Exception, match=r"kodak is not pulled into .*data-root; run `sedic-kit data pull kodak`"):
        resolve("kodak")
    with pytest.raises(Exception, match="not a directory, nor one of the sets kodak, div2k, clic2020"):
        resolve(str(tmp_path / "nowhere"))
    (named / "manifest.json").write_text("{\"name\": 3}")
    with pytest.raises(Exception, match="manifest.json: not a sedic-kit data manifest"):
        resolve(str(named))


def test_bad_input_is_one_line_in_a_fresh_process(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_bytes(b"\xff\x00")
    for args, message in (
        (["data", "pull", "imagenet"], "unknown data set 'imagenet'; known: kodak, div2k, clic2020"),
        (["data", "verify", str(broken)], "not a sedic-kit data manifest"),
        (["data", "pull", "div2k", "--root", str(tmp_path), "--mirror", str(tmp_path / "nowhere")], "not a URL (http://, https://, file://) nor a local folder"),
        (["data", "pull", "div2k", "--root", str(tmp_path), "--mirror", "ftp://example.org"], "expected an http://, https:// or file:// URL"),
        (["data", "pull", "kodak", "--root", str(tmp_path), "--mirror", "http://127.0.0.1:9"], "kodim01.png: download from http://127.0.0.1:9/kodim01.png stopped at 0"),
    ):
        proc = subprocess.run([sys.executable, "-m", "sedic_kit", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "kodak").exists() and not list(tmp_path.glob(".kodak.*"))
