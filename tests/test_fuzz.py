"""A bounded decoder fuzz run (the long one: benchmarks/fuzz_decoder.py, numbers in BENCHMARKS.md).

Mutations of three real files (lite; webp + brotli + png masks; jpeg + zlib + golomb masks; and
bmshj2018-hyperprior where CompressAI is installed), every class of :mod:`sedic_kit.testing.fuzz` (the
crafted format-2 generators of :mod:`sedic_kit.testing.crafted` included), each decoded in a forked worker under a 2 GB address-space cap and
a timer: every outcome must be a clean SedicError or a valid decode, within 2 s and 300 MB.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import EXAMPLES, importable
from sedic_kit.testing import fuzz

CASES = 21 * 12


def test_fuzz_decoder_outcomes_are_clean(tmp_path: Path) -> None:
    start = time.perf_counter()
    files = fuzz.seed_files([EXAMPLES / "kodim03.png", EXAMPLES / "kodim23.png"], tmp_path)
    expected = [("avif", "lm", "cabac", "upsample"), ("webp", "brotli", "png", "upsample"), ("jpeg", "zlib", "golomb", "upsample")]
    if importable("compressai", "torch"):
        expected.append(("bmshj2018-hyperprior", "lm", "cabac", "upsample"))
    assert [unpack_names(f) for f in files] == expected
    results = fuzz.run(files, seed=20251125, cases=CASES, workers=1)
    assert len(results) == CASES and {r.kind for r in results} == set(fuzz.KINDS)
    bad = list(fuzz.failures(results))
    assert not bad, fuzz.table(results) + "\n" + "\n".join(map(str, bad[:10]))
    assert sum(r.outcome == "decoded" for r in results) > 0  # some mutations stay valid files
    assert time.perf_counter() - start < 60


def test_a_crash_is_recorded_and_the_run_goes_on(tmp_path: Path, monkeypatch) -> None:
    """A worker killed mid-case (as by a segfault in a codec) yields a 'crash' for that case; the rest still run."""
    import os
    import signal

    files = [fuzz.craft_v1(fuzz.unpack(f)) for f in fuzz.seed_files([EXAMPLES / "kodim23.png"], tmp_path)[:1]]
    real = fuzz.decode_case

    def dies_on_case_5(codec, data, *args):  # type: ignore[no-untyped-def]
        if data == fuzz.make_case(files, 1, 5)[1]:
            os.kill(os.getpid(), signal.SIGKILL)  # dies as a segfaulting codec would: no cleanup, no message
        return real(codec, data, *args)

    monkeypatch.setattr(fuzz, "decode_case", dies_on_case_5)
    results = fuzz.run(files, seed=1, cases=12, workers=2)
    assert [r.index for r in results] == list(range(12))
    assert [r.outcome for r in results if r.index == 5] == ["crash"]


def unpack_names(data: bytes) -> tuple[str, ...]:
    return tuple(ref.name for ref in fuzz.unpack(data).plugins.values())


def test_benchmark_finishes_in_a_fresh_process_after_torch_ran() -> None:
    """The seed files are coded in the parent (torch's OpenMP pool starts there), then decoded in
    forked children: each child must drop to one thread, or its first parallel region waits
    forever (it did: ``fuzz_decoder.py --cases 20`` hung in the bmshj2018 reference decode)."""
    import subprocess
    import sys

    import pytest

    if not importable("compressai"):
        pytest.skip("compressai is not installed")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_decoder.py"
    done = subprocess.run([sys.executable, str(script), "--cases", "20", "--workers", "2"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "20 cases, seed 0" in done.stdout
