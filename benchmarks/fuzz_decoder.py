"""Long decoder fuzz run: mutations of three real ``.sedic`` files, outcome table by mutation class.

The seed files are ``examples/images`` (kodim03, kodim23 with their sidecar JSON) resized to
192 pixels wide and coded with ``lite`` and two variants (webp + brotli + png masks, jpeg +
zlib + golomb masks), and with CompressAI's bmshj2018-hyperprior (random weights) where it is
installed; see :mod:`sedic_kit.testing.fuzz` for the classes and the limits. Each worker is a
forked process under ``RLIMIT_AS``; exit status 1 when any case is not a clean error or decode.

Usage: ``python benchmarks/fuzz_decoder.py [--cases 100000] [--workers 2] [--seed 0] [--max-pixels 16777216]``
       ``python benchmarks/fuzz_decoder.py --replay INDEX [--seed 0]``  (decode one case here, with its traceback)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sedic_kit import Codec
from sedic_kit.testing import fuzz
from sedic_kit.codec import DEFAULT_DECODE_PIXELS

ROOT = Path(__file__).resolve().parent.parent
IMAGES = [ROOT / "examples" / "images" / "kodim03.png", ROOT / "examples" / "images" / "kodim23.png"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-pixels", type=int, default=DEFAULT_DECODE_PIXELS, help="the decoder's budget (default: the decoder's own)")
    ap.add_argument("--replay", type=int, default=None, help="decode case INDEX in this process and show what happens")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = fuzz.seed_files(IMAGES, Path(tmp))
    if args.replay is not None:
        kind, data = fuzz.make_case(files, args.seed, args.replay)
        print(f"case {args.replay} ({kind}, {len(data)} bytes)")
        Codec.from_profile("lite", max_decode_pixels=args.max_pixels).decode(data)
        print("decoded")
        return 0
    start = time.perf_counter()
    step = max(1, args.cases // 20)

    def progress(done: int) -> None:
        if done % step == 0:
            print(f"{done}/{args.cases} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    results = fuzz.run(files, args.seed, args.cases, workers=args.workers, max_pixels=args.max_pixels, progress=progress)
    print(f"{len(results)} cases, seed {args.seed}, {args.workers} workers, max_pixels {args.max_pixels}, "
          f"{time.perf_counter() - start:.0f} s\n")
    print(fuzz.table(results))
    bad = list(fuzz.failures(results))
    for r in bad[:20]:
        print(f"case {r.index} ({r.kind}): {r.outcome} {r.detail}  [replay: --replay {r.index} --seed {args.seed}]")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
