"""``sedic-kit run`` loses nothing: each ``.sedic`` is written as soon as it is encoded, Ctrl-C in
either phase says what is done and how to resume, a rerun resumes, one ``--out`` holds one setup,
files a run did not write are never replaced, progress shows off a terminal (real subprocesses, real files)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import EXAMPLES, synthetic_image
from sedic_kit import Codec
from slow_run import slow_registry

SLOW_RUN = Path(__file__).with_name("slow_run.py")
SLOW = ["-s", "describer.plugin=slow", "-s", "restorer.plugin=slow", "-s", "segmenter.plugin=box"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SEDIC_PROGRESS_SECONDS": "600", **extra}  # no timed lines unless asked


def images(folder: Path, count: int) -> list[Path]:
    """``count`` 96x64 images, each with a sidecar description of one object."""
    folder.mkdir()
    for i in range(count):
        synthetic_image(seed=i).save(folder / f"img{i}.png")
        sidecar = {"caption": f"disc {i}", "objects": [{"name": "yellow disc", "details": "round", "box": [40, 12, 76, 46]}]}
        (folder / f"img{i}.json").write_text(json.dumps(sidecar))
    return sorted(folder.glob("*.png"))


def default_sigint() -> None:
    """Ctrl-C's default handling in the child, even where this suite runs with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def slow_run(*args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SLOW_RUN), *args], env=env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )


def interrupt_when(proc: subprocess.Popen[str], ready: object, timeout: float = 120) -> tuple[str, str]:
    """Send Ctrl-C (SIGINT) to ``proc`` once ``ready()`` holds; return its output."""
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=timeout)


def report(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def names(records: list[dict]) -> list[str]:
    return [Path(r["image"]).name for r in records]


def assert_matches_files(out: Path) -> dict:
    """The report lists exactly the files in ``out``: each finished image's .sedic and PNG,
    each pending image's .sedic; its bits are the file's; no lock or temporary file."""
    data = report(out)
    expected = {"results.json"}
    for record in data["images"]:
        assert 8 * Path(record["sedic"]).stat().st_size == record["file_bits"] == sum(record["bits"].values())
        assert Image.open(record["reconstruction"]).size == (record["width"], record["height"])
        expected |= {Path(record["sedic"]).name, Path(record["reconstruction"]).name}
    for record in data["pending"]:
        assert 8 * Path(record["sedic"]).stat().st_size == record["file_bits"]
        expected.add(Path(record["sedic"]).name)
    assert {p.name for p in out.iterdir()} == expected
    return data


def test_ctrl_c_in_either_phase_keeps_the_work_and_a_rerun_resumes(tmp_path: Path) -> None:
    paths = images(tmp_path / "in", 6)
    out = tmp_path / "out"
    args = ["run", str(tmp_path / "in"), "--out", str(out), *SLOW]
    resume = f"`sedic-kit {' '.join(args)}` resumes"

    # Ctrl-C in the encode phase, once two .sedic files are written
    proc = slow_run(*args)
    stdout, stderr = interrupt_when(proc, lambda: len(list(out.glob("*.sedic"))) >= 2)
    data = assert_matches_files(out)
    encoded = len(data["pending"])
    assert proc.returncode == 130 and data["images"] == [] and 2 <= encoded < 6
    assert stderr.strip().splitlines() == [
        f"interrupted: 0 of 6 images done, {encoded} encoded awaiting decode, as {out / 'results.json'} lists; {resume}"
    ], stderr
    assert "Traceback" not in stderr and stdout == ""

    # the rerun encodes only the rest; Ctrl-C in its decode phase, once one PNG is written
    proc = slow_run(*args)
    stdout, stderr = interrupt_when(proc, lambda: len(list(out.glob("*.png"))) >= 1)
    data = assert_matches_files(out)
    finished = len(data["images"])
    assert proc.returncode == 130 and finished >= 1 and finished + len(data["pending"]) == 6
    lines = stderr.strip().splitlines()
    assert lines == [
        f"0 of 6 images done earlier with this setup, {encoded} encoded awaiting decode, {6 - encoded} to encode (--redo recodes them all)",
        f"interrupted: {finished} of 6 images done, {6 - finished} encoded awaiting decode, as {out / 'results.json'} lists; {resume}",
    ], stderr
    # one summary line per image decoded (the last may be cut off by Ctrl-C right after its commit)
    assert finished - 1 <= len(stdout.strip().splitlines()) <= finished, stdout

    # the next rerun only decodes (no describer runs: it takes no encode time), then nothing is left
    start = time.monotonic()
    proc = slow_run(*args, SLOW_SECONDS="0")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert stderr.strip().splitlines() == [
        f"{finished} of 6 images done earlier with this setup, {6 - finished} encoded awaiting decode, 0 to encode (--redo recodes them all)"
    ]
    assert stdout.strip().splitlines()[-1] == f"wrote {6 - finished} reconstruction{'s' if 6 - finished > 1 else ''} ({finished} done earlier) and {out / 'results.json'}"
    data = assert_matches_files(out)
    assert names(data["images"]) == [p.name for p in paths] and data["pending"] == []
    assert time.monotonic() - start < 60

    # what the interrupted runs wrote is what one uninterrupted run writes
    codec = Codec.from_profile("lite", overrides=SLOW[1::2], registry=slow_registry())
    for path in paths[:2]:
        assert (out / f"{path.stem}.sedic").read_bytes() == codec.encode(path).data

    # done is done: a rerun skips all; an edited input is recoded; --redo recodes all
    proc = subprocess.run([sys.executable, str(SLOW_RUN), *args], env=env(SLOW_SECONDS="0"), capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"wrote 0 reconstructions (6 done earlier) and {out / 'results.json'}"
    synthetic_image(seed=40).save(paths[3])
    proc = slow_run(*args)  # Ctrl-C once the edited image is encoded again: its old PNG is gone with its record
    interrupt_when(proc, lambda: any(r["image"] == str(paths[3]) for r in report(out)["pending"]))
    assert [r["image"] for r in assert_matches_files(out)["pending"]] == [str(paths[3])]
    proc = subprocess.run([sys.executable, str(SLOW_RUN), *args], env=env(SLOW_SECONDS="0"), capture_output=True, text=True)
    assert "5 of 6 images done earlier with this setup, 1 encoded awaiting decode, 0 to encode" in proc.stderr
    assert proc.stdout.strip().splitlines()[0].startswith("img3.png: ")
    proc = subprocess.run([sys.executable, str(SLOW_RUN), *args, "--redo"], env=env(SLOW_SECONDS="0"), capture_output=True, text=True)
    assert proc.returncode == 0 and f"wrote 6 reconstructions and {out / 'results.json'}" in proc.stdout
    assert_matches_files(out)


def test_one_out_holds_one_setup(small_image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "sedic_kit", "run", str(small_image), "--out", str(out), "-s", "segmenter.plugin=box"]
    assert subprocess.run([*cli, "-s", "reference_codec.quality=5"], env=env(), capture_output=True).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.run([*cli, "-s", "reference_codec.quality=60"], env=env(), capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"Error: {out} holds the results of another setup: profile.reference_codec.quality: 5 -> 60; "
        "choose another --out (one --out holds one setup; it keeps its 1 image)"
    ]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing replaced
    data = report(out)
    assert data["setup"]["profile"]["reference_codec"]["quality"] == 5 and len(data["fingerprint"]) == 16
    # a report of a sedic-kit before fingerprints is not silently replaced either
    old = {k: v for k, v in data.items() if k not in ("fingerprint", "setup", "pending")}
    (out / "results.json").write_text(json.dumps(old))
    proc = subprocess.run([*cli, "-s", "reference_codec.quality=5"], env=env(), capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"Error: {out} holds the results of a sedic-kit without setup fingerprints; "
        "choose another --out (one --out holds one setup; it keeps its 1 image)"
    ]


def test_run_never_replaces_an_input_or_a_file_it_did_not_write(tmp_path: Path) -> None:
    paths = images(tmp_path / "in", 2)
    md5 = {p: hashlib.md5(p.read_bytes()).hexdigest() for p in paths}
    cli = [sys.executable, "-m", "sedic_kit", "run", str(tmp_path / "in"), "-s", "segmenter.plugin=box"]
    for extra in ([], ["--force"]):  # the inputs' folder as --out: refused, --force or not
        proc = subprocess.run([*cli, "--out", str(tmp_path / "in"), *extra], env=env(), capture_output=True, text=True)
        assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
            f"Error: {tmp_path / 'in' / 'img0.png'} would overwrite the input img0.png; choose another --out"
        ]
    assert {p: hashlib.md5(p.read_bytes()).hexdigest() for p in paths} == md5
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(EXAMPLES / "kodim23.png", out / "img1.png")  # someone's own file where an output would go
    proc = subprocess.run([*cli, "--out", str(out)], env=env(), capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"Error: {out / 'img1.png'} exists and is not listed in {out / 'results.json'}; move it away, choose another --out, or pass --force to replace it"
    ]
    assert (out / "img1.png").read_bytes() == (EXAMPLES / "kodim23.png").read_bytes() and not list(out.glob("*.sedic"))
    proc = subprocess.run([*cli, "--out", str(out), "--force"], env=env(), capture_output=True, text=True)
    assert proc.returncode == 0 and Image.open(out / "img1.png").size == (96, 64)
    assert_matches_files(out)


def test_a_missing_input_fails_once_before_the_first_image(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", "run", str(EXAMPLES / "kodim23.png"), "nothere.png", "--out", str(out)],
                          env=env(), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == ["Error: nothere.png: no such file or directory"]
    assert proc.stdout == "" and not out.exists()
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "sedic_kit", "run", "empty", "--out", str(out)], env=env(), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("Error: empty: no images in this directory (looked for ") and not out.exists()


def test_plain_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    images(tmp_path / "in", 3)
    args = ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *SLOW]
    proc = slow_run(*args, SEDIC_PROGRESS_SECONDS="0.3")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    lines = stderr.strip().splitlines()
    assert any(line.startswith("encoding img0.png: describe (0/3 done, ") for line in lines), stderr
    assert any(line.startswith("decoding img2.png: restore (2/3 done, ") for line in lines), stderr
    assert all(" done, " in line and "\x1b" not in line and "━" not in line for line in lines), stderr
    assert len(stdout.strip().splitlines()) == 4  # one line per image and the total
    proc = slow_run(*args, "--redo", "--quiet", SEDIC_PROGRESS_SECONDS="0.3")
    assert proc.communicate(timeout=120)[1] == "" and proc.returncode == 0
