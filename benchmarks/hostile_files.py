"""Issue 21's hostile files at the issue's own sizes, and the legitimate paths beside them.

Each file is decoded by ``sedic-kit decode FILE -o OUT.png`` in a fresh process under
``timeout 30`` (300 for the legitimate ones) and ``/usr/bin/time``; the table gives exit status, wall and CPU seconds, peak
resident size, whether an output file was left, and the error line. Legitimate files: kodim23
(768x512, with its sidecar semantics) coded by ``lite``, and by bmshj2018-hyperprior and
cheng2020-attn (random weights: the decode work is the same as with the zoo's).

Usage: ``python benchmarks/hostile_files.py [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import hostile_cases  # noqa: E402

LEGITIMATE = {
    "kodak-lite": (),
    "kodak-bmshj2018": ("reference_codec.plugin=bmshj2018-hyperprior", "reference_codec.pretrained=false"),
    "kodak-cheng2020": ("reference_codec.plugin=cheng2020-attn", "reference_codec.pretrained=false"),
}


def decode(path: Path, out: Path, limit: int) -> tuple[int, float, float, float, str]:
    """Exit status, wall s, CPU s (children included), peak MB and stderr's last line of one decode under ``timeout limit``."""
    stats = path.with_suffix(".time")
    cmd = ["/usr/bin/time", "-o", str(stats), "-f", "%e %U %S %M", "timeout", str(limit), "sedic-kit", "decode", str(path), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "400"})
    fields = stats.read_text().split()[-4:]
    wall, user, system, kb = float(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, wall, user + system, kb / 1024, (lines[-1] if lines else "") + (f" [{len(lines)} lines]" if len(lines) > 1 else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    print(os.popen("uptime").read().strip())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = hostile_cases.build(work, big=True)
        for name, overrides in LEGITIMATE.items():
            files[name] = hostile_cases.write_v2(hostile_cases.encode(work, 768, *overrides))
        print("| file | bytes | exit | wall s | CPU s | peak MB | output left | stderr |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, data in files.items():
            if args.only and name not in args.only:
                continue
            path, out = work / f"{name}.sedic", work / f"{name}.png"
            path.write_bytes(data)
            code, wall, cpu, mb, line = decode(path, out, 300 if name in LEGITIMATE else 30)
            print(f"| {name} | {len(data)} | {code} | {wall:.2f} | {cpu:.2f} | {mb:.0f} | {'yes' if out.exists() else 'no'} | {line} |", flush=True)
    print(os.popen("uptime").read().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
