"""The batch runner: distinct output names, a report consistent with the files at every moment
(two concurrent runs included), per-image failures recorded, setup failures stop at once."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from conftest import synthetic_image
from sedic_kit import Describer, ModelNotFoundError, Payload, SourceImage, hookimpl
from sedic_kit import plugins as plugins_module
from sedic_kit.cli import main
from sedic_kit.plugins import Registry


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


def assert_consistent(out: Path) -> dict:
    """Every record names files that exist and have exactly the bits it reports."""
    report = json.loads((out / "results.json").read_text())
    for record in report["images"]:
        sedic = Path(record["sedic"])
        assert 8 * sedic.stat().st_size == record["file_bits"] == sum(record["bits"].values()), record["image"]
        assert Image.open(record["reconstruction"]).size == (record["width"], record["height"])
    return report


def test_inputs_with_one_stem_never_share_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, other = tmp_path / "in", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    synthetic_image(seed=1).save(folder / "a.png")
    synthetic_image(seed=2).save(folder / "a.jpg", quality=90)
    synthetic_image(seed=3).save(other / "a.png")
    out = tmp_path / "out"
    args = ["run", str(folder), str(other / "a.png"), "--out", str(out), "-s", "segmenter.plugin=box"]
    rc, stdout, err = run_cli(capsys, *args)
    assert rc == 0, err
    names = {Path(r["image"]).relative_to(tmp_path).as_posix(): Path(r["sedic"]).name for r in assert_consistent(out)["images"]}
    assert names == {"in/a.jpg": "a.sedic", "in/a.png": "a-png.sedic", "other/a.png": "a-png-2.sedic"}
    assert "wrote 3 reconstructions" in stdout
    rc, _, err = run_cli(capsys, "run", str(other / "a.png"), "--out", str(out), "-s", "segmenter.plugin=box")
    assert rc == 0, err
    again = {Path(r["image"]).relative_to(tmp_path).as_posix(): Path(r["sedic"]).name for r in assert_consistent(out)["images"]}
    assert again == names  # an input keeps its name across runs


def test_two_concurrent_runs_into_one_out(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        synthetic_image(seed=i).save(folder / f"img{i}.png")
    out = tmp_path / "out"
    common = [sys.executable, "-m", "sedic_kit", "--quiet", "run", "--out", str(out), "-s", "segmenter.plugin=box"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    halves = ([folder / f"img{i}.png" for i in range(4)], [folder / f"img{i}.png" for i in range(2, 6)])  # img2, img3 in both
    runs = [subprocess.Popen([*common, *map(str, half)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for half in halves]
    checks = 0
    while any(p.poll() is None for p in runs):  # look at the report between commits, as a reader holding the lock
        if (out / "results.json").exists():
            fd = os.open(out, os.O_RDONLY)  # the lock is on the directory itself
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                assert_consistent(out)
                checks += 1
            finally:
                os.close(fd)
        time.sleep(0.05)
    for p in runs:
        _, err = p.communicate()
        assert p.returncode == 0, err
    report = assert_consistent(out)
    assert len(report["images"]) == 6 and report["pending"] == [] and checks > 0
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".sedic") == [f"img{i}.sedic" for i in range(6)]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no lock or temporary file left


class Flaky(Describer):
    """Fails in an unexpected way on 'boom' images; needs weights that are not there on 'setup' images."""

    name = "flaky"

    def describe(self, source: SourceImage) -> Payload:
        stem = source.path.stem if source.path else ""
        if stem.startswith("boom"):
            raise RuntimeError("kaboom")
        if stem.startswith("setup"):
            raise ModelNotFoundError("describer.model: weights are not here")
        return Payload(*source.size, "fine")


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The installed plugins and ``Flaky``, as the process registry for this test only."""
    registry = Registry()
    registry.load_entry_points()
    registry.add_module(SimpleNamespace(register_describers=hookimpl(lambda register: register(Flaky))), "flaky")
    monkeypatch.setattr(plugins_module, "_registry", registry)
    return registry


def test_any_per_image_failure_is_recorded_and_the_batch_goes_on(flaky: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "boom.png", "c.png"):
        synthetic_image().save(folder / name)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, "run", str(folder), "--out", str(out), "-s", "describer.plugin=flaky", "--debug")
    assert rc == 1 and "wrote 2 reconstructions" in stdout and "1 failed" in stdout
    assert error_lines(err) == ["Error: boom.png: RuntimeError: kaboom"]
    assert "Traceback" in err and "kaboom" in err  # --debug after the subcommand, traceback of a caught error
    report = assert_consistent(out)
    assert [Path(r["image"]).name for r in report["images"]] == ["a.png", "c.png"]
    assert report["failures"] == [{"image": str(folder / "boom.png"), "error": "boom.png: RuntimeError: kaboom"}]


def test_a_setup_failure_stops_the_batch_once(flaky: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("setup1.png", "setup2.png", "setup3.png"):
        synthetic_image().save(folder / name)
    rc, _, err = run_cli(capsys, "run", str(folder), "--out", str(tmp_path / "out"), "-s", "describer.plugin=flaky")
    assert rc == 1 and error_lines(err) == ["Error: describer.model: weights are not here"], err


def test_missing_weights_stop_before_the_first_image(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        shutil.copy(small_image, small_image.with_name(f"copy{i}.png"))
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, "run", str(small_image.parent), "--out", str(out), "--set", "restorer.plugin=orag")
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("Error: restorer.model = stable-diffusion-v1-5/stable-diffusion-v1-5 is not found at ")
    assert "`sedic-kit models pull lite --set restorer.plugin=orag`" in lines[0]
    assert not out.exists()


def test_an_unreadable_report_stops_the_run_before_any_image(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{not json")
    rc, _, err = run_cli(capsys, "run", str(small_image), "--out", str(out))
    assert rc == 1 and "results.json: not a sedic-kit run report" in err and not (out / "small.sedic").exists()


def test_decode_creates_the_output_directory(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sedic = tmp_path / "a.sedic"
    assert run_cli(capsys, "encode", str(small_image), "-o", str(sedic))[0] == 0
    target = tmp_path / "new" / "deeper" / "x.png"
    rc, out, err = run_cli(capsys, "decode", str(sedic), "-o", str(target))
    assert rc == 0, err
    assert Image.open(target).size == (96, 64) and f"{target}: 96x64" in out


def test_decode_writes_the_format_its_suffix_names_atomically(small_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sedic = tmp_path / "a.sedic"
    assert run_cli(capsys, "encode", str(small_image), "-o", str(sedic))[0] == 0
    assert run_cli(capsys, "decode", str(sedic), "-o", str(tmp_path / "x.jpg"))[0] == 0
    assert Image.open(tmp_path / "x.jpg").format == "JPEG"
    rc, _, err = run_cli(capsys, "decode", str(sedic), "-o", str(tmp_path / "x.foo"))
    assert rc == 1 and err.strip().splitlines() == [f"Error: {tmp_path / 'x.foo'}: unknown image file extension '.foo' (use .png, .webp, .jpg, ...)"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".", "x.")) and p.name != "x.jpg"]  # no partial or temporary file
