"""Issue 21's hostile format-2 files (rebuilt by ``hostile_cases``), each decoded by the CLI in a
fresh process under a CPU limit: exit 1, one clean error line, no output file (an existing one
left as it was), within 10 s of CPU and 1 GB of peak resident memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import hostile_cases
from conftest import importable
from sedic_kit import Codec
from sedic_kit.codec import DEFAULT_DECODE_PIXELS
from sedic_kit.errors import FormatError, shown

CPU_S = 10.0
MEMORY_MB = 1024.0
HAS_COMPRESSAI = importable("compressai", "torch")


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    built = hostile_cases.build(tmp_path_factory.mktemp("hostile"))
    return built if HAS_COMPRESSAI else {k: v for k, v in built.items() if k not in hostile_cases.NEEDS_COMPRESSAI}


def decode_all(files: dict[str, Path], workdir: Path) -> dict[str, tuple[int, str, float, float]]:
    """``sedic-kit decode`` of every file, all at once, each in its own fresh process:
    exit code, stderr, CPU seconds and peak resident MB (from ``wait4``) per file."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (30, 30))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "sedic_kit", "decode", str(path), "-o", str(workdir / f"{name}.png")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limits, env=env,
        )
        for name, path in files.items()
    }
    results = {}
    for name, proc in procs.items():
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        results[name] = (proc.returncode, stderr, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
    return results


def test_every_hostile_file_ends_in_one_clean_line(cases: dict[str, bytes], tmp_path: Path) -> None:
    files = {}
    for name, data in cases.items():
        files[name] = tmp_path / f"{name}.sedic"
        files[name].write_bytes(data)
    (tmp_path / "heic-10000.png").write_bytes(b"an earlier image")  # never replaced by a failed decode
    for name, (code, stderr, cpu, peak) in decode_all(files, tmp_path).items():
        lines = stderr.splitlines()
        assert code == 1, (name, code, stderr)
        assert len(lines) == 1 and lines[0].startswith("Error: "), (name, stderr)
        assert "\x1b" not in stderr and "Traceback" not in stderr, (name, stderr)
        assert cpu <= CPU_S and peak <= MEMORY_MB, (name, cpu, peak)
        out = tmp_path / f"{name}.png"
        assert not out.exists() or out.read_bytes() == b"an earlier image", name
    assert (tmp_path / "heic-10000.png").read_bytes() == b"an earlier image"
    assert not list(tmp_path.glob(".*.tmp"))


def test_what_each_file_is_refused_for(cases: dict[str, bytes]) -> None:
    codec = Codec.from_profile("lite")
    expected = {
        "heic-10000": "10000x10000 image (100,000,000 pixels), above the decoder's limit of 16,777,216",
        "cabac-scale1-10000": "above the decoder's limit",
        "cabac-scale1-4096": "decoding the mask section (mask_coder 'cabac') costs",
        "webp-10000": "above the decoder's limit",
        "jpeg-10000": "above the decoder's limit",
        "name-newline": "restorer 'up\\nsample\\x1b[31m' v1, which is not installed",
        "key-newline": "unknown restorer 'upsample' parameters: filter\\nx\\x1b[2J",
        "compressai-on-avif": "corrupt bmshj2018-hyperprior reference section",
        "compressai-empty": "a latent string of 0 bytes",
        "compressai-header": "decoding the reference section (reference_codec 'bmshj2018-hyperprior') costs",
        "compressai-shape": "the hyper-latent string is not one this codec writes for a 320x256 reference",
    }
    for name, data in cases.items():
        with pytest.raises(FormatError) as info:
            codec.decode(data)
        assert expected[name] in str(info.value), (name, str(info.value))
        assert "\n" not in str(info.value)


def test_the_budget_is_the_callers_to_raise(cases: dict[str, bytes]) -> None:
    """``max_decode_pixels`` moves both checks: the header's size and each stage's work."""
    data = cases["cabac-scale1-4096"]
    assert DEFAULT_DECODE_PIXELS == 4096 * 4096
    with pytest.raises(FormatError, match="Codec\\(max_decode_pixels=...\\)"):
        Codec.from_profile("lite").decode(data)
    with pytest.raises(FormatError, match="costs 156,549,120 pixel-equivalents"):
        Codec.from_profile("lite", max_decode_pixels=100_000_000).decode(data)
    with pytest.raises(FormatError, match="limit of 1,000"):
        Codec.from_profile("lite", max_decode_pixels=1000).decode(data)


def test_a_valid_file_still_decodes_in_a_fresh_process(tmp_path: Path) -> None:
    f = hostile_cases.encode(tmp_path, 192)
    path = tmp_path / "ok.sedic"
    path.write_bytes(hostile_cases.write_v2(f))
    code, stderr, cpu, peak = decode_all({"ok": path}, tmp_path)["ok"]
    assert code == 0, stderr
    assert Image.open(tmp_path / "ok.png").size == (f.width, f.height)
    assert cpu <= CPU_S and peak <= MEMORY_MB


def test_names_from_files_are_escaped() -> None:
    assert shown("a\nb\x1b[31m\u202ec\u00e9") == "a\\nb\\x1b[31m\\u202ec\u00e9"
    assert len(shown("x" * 500)) == 80


def test_work_grows_with_what_the_file_declares() -> None:
    """Work that scales with declared sizes and steps, not with the bytes read."""
    from sedic_kit.plugins import get_registry
    from sedic_kit.roles import Role

    orag = get_registry().get(Role.restorer, "orag")
    assert orag().decode_work(768, 512, 3) == 768 * 512  # 96x64 latent x (3 x 10 + 20) steps is less
    assert orag(object_steps=1000, global_steps=1000).decode_work(768, 512, 3) == 96 * 64 * 4000
    cabac = get_registry().get(Role.mask_coder, "cabac")
    assert cabac(scale=1).decode_work(b"\0", 3, 1000, 1000) == 3 * 1000 * 1000 * 7
    assert cabac().decode_work(b"\0", 3, 1000, 1000) == 1000 * 1000  # 125 x 125 cells: one plane is more
    if HAS_COMPRESSAI:
        section = b"\x08" + bytes(16)
        cheng = get_registry().get(Role.reference_codec, "cheng2020-attn")(pretrained=False)
        assert cheng.decode_work(section, 768, 512) == 768 * 512 * 40 <= DEFAULT_DECODE_PIXELS
        assert cheng.decode_work(section, 1000, 1000) == 1024 * 1024 * 40 > DEFAULT_DECODE_PIXELS
