"""Decoder fuzzing: mutations of real ``.sedic`` files, each decoded under a memory cap and a time limit.

Used by ``tests/test_fuzz.py`` (a bounded run in CI) and ``benchmarks/fuzz_decoder.py`` (long runs).
Case ``i`` of seed ``s`` is a pure function of ``(s, i)`` and the seed files, so any case can be
replayed. Decoding happens in forked worker processes (a crash kills a worker, not the run), each
under ``RLIMIT_AS`` and a per-case timer; memory is the peak resident size during the case
(``VmHWM``, reset before each) less the resident size before it. An outcome is good when the file decodes to an RGB image
of its header's size or fails with a :class:`SedicError`, within the time (CPU seconds) and
memory bounds. Each worker first decodes a seed file once with every installed decoder plugin,
untimed, so that what a backend imports on first use (torch, diffusers) is not charged to a case;
a case over a bound is still measured once more.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import resource
import signal
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import brotli
from PIL import Image

from .. import isolated
from ..codec import DEFAULT_DECODE_PIXELS, Codec
from ..container import MAGIC, MAX_SIDE, PluginRef, Reader, SedicFile, pack, put_bytes, put_varint, unpack
from ..errors import SedicError
from .crafted import COMPRESSAI, GENERATORS, swap, with_crc
from ..plugins import get_registry
from ..roles import DECODER_ROLES, Role

GOOD = ("decoded", "error")
OUTCOMES = (*GOOD, "traceback", "slow", "memory", "crash")


@dataclass(frozen=True)
class Result:
    index: int
    kind: str
    outcome: str
    seconds: float
    """CPU time of the decode (what the time bound applies to: wall time on a shared machine is noise)."""
    growth_mb: float
    wall: float = 0.0
    detail: str = ""


# -- crafting files -------------------------------------------------------------------------
def craft_v1(f: SedicFile, raw_params: dict[Role, bytes] | None = None, raw_size: tuple[int, int] | None = None) -> bytes:
    """``f`` in the version-1 layout (docs/format.md) with a valid CRC; ``raw_params`` replaces a
    role's parameter JSON bytes and ``raw_size`` the stored width-1/height-1, unchecked."""
    out = bytearray(MAGIC)
    put_varint(out, 1)
    for value in raw_size or (f.width - 1, f.height - 1):
        put_varint(out, value)
    for role in DECODER_ROLES:
        ref = f.plugins[role]
        put_bytes(out, ref.name.encode())
        put_varint(out, ref.version)
        params = json.dumps(ref.params, separators=(",", ":"), sort_keys=True).encode() if ref.params else b""
        put_bytes(out, (raw_params or {}).get(role, params))
    for body in (f.reference, f.text, f.masks):
        put_bytes(out, body)
    for tag, body in f.extras.items():
        put_bytes(out, tag.encode())
        put_bytes(out, body)
    return bytes(out + struct.pack(">I", zlib.crc32(out)))


@lru_cache(maxsize=1)
def _bombs() -> dict[str, bytes]:
    """Compressed streams that inflate to far more than any text section can hold."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    zbomb = b"".join(deflate.compress(zeros) for _ in range(64)) + deflate.flush()  # 64 MB
    return {"zlib": zbomb, "brotli": brotli.compress(bytes(256 << 20), quality=5)}  # 256 MB


def png_claiming(width: int, height: int, payload: bytes = bytes(64)) -> bytes:
    """A 1-bit grayscale PNG claiming ``width`` x ``height`` whose IDAT is ``payload`` deflated."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(payload)) + chunk(b"IEND", b"")


def _random_value(rng: random.Random) -> object:
    return rng.choice(
        [None, True, False, -1, 0, 1, 2, 3, 7, 64, 65, 1 << 31, 1 << 64, -(1 << 70), 1e308, -0.5, 0.25, "", "x" * 999,
         "lanczos", "4:4:4", [], [1, 2], {}, {"a": [1, {"b": None}]}]
    )


def m_truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def m_bitflip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def m_overwrite(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    start = rng.randrange(len(out))
    n = rng.randint(1, 16)
    out[start : start + n] = rng.randbytes(n)
    return bytes(out)


def m_crc_fixed(data: bytes, rng: random.Random) -> bytes:
    """Byte edits anywhere before the trailer (lengths, varints, ids, JSON, payloads), CRC recomputed."""
    body = bytearray(data[:-4])
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(2, len(body))
        op = rng.randrange(5)
        if op == 0:
            body[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            body[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op == 2:
            body[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del body[pos : pos + rng.randint(1, 8)]
        else:
            body[pos : pos + 5] = b"\xff\xff\xff\xff\x0f"  # a huge varint
    return with_crc(bytes(body))


def m_header_size(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    sides = [1, 2, 3, f.width // 2, f.width + 1, 2 * f.width, 30000, 100000, MAX_SIDE, rng.randint(1, 5000)]
    w, h = rng.choice(sides), rng.choice(sides + [f.height])
    if rng.random() < 0.1:
        return craft_v1(f, raw_size=(rng.choice([MAX_SIDE, 1 << 40, (1 << 63) - 1]), h - 1))
    return craft_v1(SedicFile(w, h, f.plugins, f.reference, f.text, f.masks, f.extras))


def m_plugin_id(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    registry = get_registry()
    names = sorted({n for r in Role for n in registry.names(r)}) + ["", "x" * 200, "../../etc/passwd", "\u00e9"]
    plugins = dict(f.plugins)
    role = rng.choice(DECODER_ROLES)
    own = registry.names(role)
    name = rng.choice(own) if own and rng.random() < 0.7 else rng.choice(names)
    try:
        version = registry.get(role, name).version if rng.random() < 0.8 else rng.choice([0, 3, 1 << 40])
    except SedicError:
        version = rng.choice([0, 1, 2])
    plugins[role] = PluginRef(name, version, plugins[role].params if rng.random() < 0.5 else {})
    return craft_v1(SedicFile(f.width, f.height, plugins, f.reference, f.text, f.masks, f.extras))


def m_option(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    role = rng.choice(DECODER_ROLES)
    ref = f.plugins[role]
    try:
        known = list(get_registry().get(role, ref.name).decode_params)
    except SedicError:
        known = []
    keys = known + ["scale", "quality", "seed", "steps", "nope"]
    params = dict(ref.params)
    for _ in range(rng.randint(1, 3)):
        params[rng.choice(keys)] = _random_value(rng)
    plugins = dict(f.plugins)
    plugins[role] = PluginRef(ref.name, ref.version, params)
    raw = None
    if rng.random() < 0.15:  # constants strict JSON does not have
        raw = {role: rng.choice([b'{"scale":NaN}', b'{"scale":Infinity}', b'{"scale":-Infinity}', b'{"scale":1e999}'])}
    return craft_v1(SedicFile(f.width, f.height, plugins, f.reference, f.text, f.masks, f.extras), raw)


def m_nested_json(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    depth = rng.choice([3, 5, 8, 50, 999, 5000, 100000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    raw = opener * depth + b"1" + closer * depth
    if opener == b"[" and rng.random() < 0.5:
        raw = b'{"a":' + raw + b"}"
    if rng.random() < 0.2:
        raw = b'{"a":"' + b"x" * rng.choice([5000, 100000]) + b'"}'  # oversized
    return craft_v1(f, {rng.choice(DECODER_ROLES): raw})


def m_size_bomb(data: bytes, rng: random.Random) -> bytes:
    """Reference sections whose own size fields claim huge images (header size kept or raised)."""
    f = unpack(data)
    ref = f.plugins[Role.reference_codec]
    big = rng.choice([16384, 30000, 65535, 1 << 20, 2 * f.width])
    section = bytearray(f.reference)
    if ref.name in ("avif", "heic"):
        out = bytearray()
        put_varint(out, big - 1)
        put_varint(out, rng.choice([big, f.height, 1]) - 1)
        r = Reader(bytes(section))
        r.varint("coded width"), r.varint("coded height")
        section = out + section[r.pos :]
    elif ref.name == "webp" and len(section) >= 10:
        section[6:8] = struct.pack("<H", min(big, 16383))
        section[8:10] = struct.pack("<H", min(big, 16383))
    elif ref.name == "jpeg":
        sof = section.find(b"\xff\xc0")
        if sof >= 0:
            section[sof + 5 : sof + 9] = struct.pack(">HH", min(big, 65500), min(big, 65500))
    w, h = (f.width, f.height) if rng.random() < 0.5 else (min(big, MAX_SIDE), min(big, MAX_SIDE))
    return craft_v1(SedicFile(w, h, f.plugins, bytes(section), f.text, f.masks, f.extras))


def m_text_bomb(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    coder = rng.choice(["zlib", "brotli", "utf8", "lm"])
    if coder in ("zlib", "brotli"):
        text = _bombs()[coder]
        if rng.random() < 0.3:  # a valid layout that is just too long
            big = bytearray()
            put_varint(big, 7)
            for _ in range(7):
                put_bytes(big, b"a " * 20000)
            text = zlib.compress(bytes(big), 9)[2:-4] if coder == "zlib" else brotli.compress(bytes(big))
    elif coder == "utf8":
        big = bytearray()
        put_varint(big, rng.choice([1, 3, 7, 99, 1 << 30]))
        put_bytes(big, b"w" * rng.choice([10, 601, 5000]))
        text = bytes(big)
    else:
        text = rng.choice([b"\xff" * 64, b"\x00" * 64, rng.randbytes(64), b"\xff\xff\xff\xff" + rng.randbytes(200)])
    return craft_v1(swap(SedicFile(f.width, f.height, f.plugins, f.reference, text, f.masks, f.extras), Role.text_coder, coder))


def m_mask_bomb(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    coder = rng.choice(["png", "golomb", "raw", "cabac", "jbig1"])
    if coder == "png":
        masks = png_claiming(rng.choice([12, 100000, 1 << 30]), rng.choice([8, 100000, 1 << 30]), b"\0" * 64)
    elif coder == "golomb":
        masks = bytes([rng.randrange(256)]) + b"\xff\xff\xff\xff" + rng.randbytes(rng.randint(0, 16))
    elif coder == "cabac":
        masks = rng.randbytes(rng.choice([1, 8, 200]))
    else:
        masks = rng.randbytes(rng.choice([1, 8, 64, 4096]))
    params = {"scale": rng.choice([1, 2, 8, 64])} if rng.random() < 0.5 else {}
    return craft_v1(swap(SedicFile(f.width, f.height, f.plugins, f.reference, f.text, masks, f.extras), Role.mask_coder, coder, params))


def m_empty_masks(data: bytes, rng: random.Random) -> bytes:
    f = unpack(data)
    return craft_v1(SedicFile(f.width, f.height, f.plugins, f.reference, f.text, b"", f.extras))


MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": m_truncate,
    "bitflip": m_bitflip,
    "overwrite": m_overwrite,
    "crc-fixed": m_crc_fixed,
    "header-size": m_header_size,
    "plugin-id": m_plugin_id,
    "option": m_option,
    "nested-json": m_nested_json,
    "size-bomb": m_size_bomb,
    "text-bomb": m_text_bomb,
    "mask-bomb": m_mask_bomb,
    "empty-masks": m_empty_masks,
    **GENERATORS,
}
KINDS = tuple(MUTATORS)


def make_case(files: Sequence[bytes], seed: int, index: int) -> tuple[str, bytes]:
    """Case ``index`` of ``seed``: its mutation class and the mutated file (``compressai`` cases
    mostly start from a CompressAI-coded seed, when there is one)."""
    rng = random.Random(f"{seed}:{index}")
    kind = KINDS[index % len(KINDS)]
    pool = files
    if kind == "compressai" and rng.random() < 0.75:
        pool = [d for d in files if unpack(d).plugins[Role.reference_codec].name in COMPRESSAI] or files
    return kind, MUTATORS[kind](pool[rng.randrange(len(pool))], rng)


# -- seed files -----------------------------------------------------------------------------
SEED_SETUPS: tuple[tuple[str, ...], ...] = (
    (),  # lite: avif, lm, cabac, upsample
    ("reference_codec.plugin=webp", "text_coder.plugin=brotli", "mask_coder.plugin=png"),
    ("reference_codec.plugin=jpeg", "reference_codec.quality=20", "text_coder.plugin=zlib", "mask_coder.plugin=golomb"),
)
COMPRESSAI_SETUP = ("reference_codec.plugin=bmshj2018-hyperprior", "reference_codec.pretrained=false")
"""A fourth seed where CompressAI is installed (random weights: no download)."""


def seed_setups() -> list[tuple[str, ...]]:
    """:data:`SEED_SETUPS`, and :data:`COMPRESSAI_SETUP` where CompressAI can run."""
    available = get_registry().get(Role.reference_codec, COMPRESSAI_SETUP[0].split("=")[1]).import_problem() is None
    return [*SEED_SETUPS, *([COMPRESSAI_SETUP] if available else [])]


def seed_files(images: Sequence[Path], workdir: Path, side: int = 192) -> list[bytes]:
    """One real file per :func:`seed_setups`, from ``images`` (with their sidecar JSON) resized to ``side`` wide."""
    files = []
    for i, overrides in enumerate(seed_setups()):
        src = images[i % len(images)]
        image = Image.open(src).convert("RGB")
        small = image.resize((side, round(side * image.height / image.width)), Image.Resampling.LANCZOS)
        path = workdir / src.name
        small.save(path)
        sidecar = src.with_suffix(".json")
        if sidecar.is_file():
            path.with_suffix(".json").write_text(sidecar.read_text())
        files.append(Codec.from_profile("lite", overrides=list(overrides)).encode(path).data)
    return files


# -- running --------------------------------------------------------------------------------
class _Timeout(BaseException):
    """Raised by the per-case timer; a BaseException so that no plugin guard swallows it."""


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _memory_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak resident size) of this process, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Restart ``VmHWM`` from the current resident size (Linux >= 4.0), so each case has its own peak."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (an isolated decoder's)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def decode_case(codec: Codec, data: bytes, slow_s: float, memory_mb: float, hard_s: float) -> tuple[str, float, float, float, str]:
    """Decode one file in this process: (outcome, CPU seconds, peak resident growth in MB, wall seconds, detail)."""
    _reset_peak()
    isolated.last_growth_mb = 0.0
    before = _memory_mb("VmRSS")
    start, cpu = time.perf_counter(), _cpu_seconds()
    signal.setitimer(signal.ITIMER_REAL, hard_s)
    detail = ""
    try:
        codec.decode(data)
        outcome = "decoded"
    except _Timeout:
        outcome, detail = "slow", f"stopped after {hard_s:g} s"
    except MemoryError:
        outcome, detail = "memory", "MemoryError"
    except SedicError as exc:
        outcome, detail = ("memory" if "MemoryError" in str(exc) else "error"), str(exc)
    except Exception as exc:
        outcome, detail = "traceback", f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    wall, seconds = time.perf_counter() - start, _cpu_seconds() - cpu
    growth = max(_memory_mb("VmHWM") - before, isolated.last_growth_mb)
    if outcome in GOOD and seconds > slow_s:
        outcome, detail = "slow", f"{seconds:.2f} s CPU: {detail}"
    elif outcome in GOOD and growth > memory_mb:
        outcome, detail = "memory", f"+{growth:.0f} MB: {detail}"
    return outcome, seconds, growth, wall, detail[:300]


def _warm_up(codec: Codec, files: Sequence[bytes]) -> None:
    """Decode a seed file once with every installed decoder plugin swapped in, untimed: what a
    backend imports on first use (torch, diffusers) is a once-per-process cost, not the data's."""
    f = unpack(files[0])
    registry = get_registry()
    for role in DECODER_ROLES:
        for name in registry.names(role):
            try:
                codec.decode(pack(swap(f, role, name))[0])
            except Exception:  # a wrong section or missing weights: only the imports matter here
                pass


def _worker(conn, files: Sequence[bytes], seed: int, indices: Sequence[int], limits: dict[str, float], max_pixels: int) -> None:  # type: ignore[no-untyped-def]
    signal.signal(signal.SIGALRM, _alarm)
    isolated.single_threaded_after_fork()
    codec = Codec.from_profile("lite", max_decode_pixels=max_pixels)
    _warm_up(codec, files)  # before the memory cap: the imported libraries are the process's baseline
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        vm = int(fh.read().split()[0]) * resource.getpagesize()
    cap = vm + int(limits["cap_mb"]) * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    for i in indices:
        kind, data = make_case(files, seed, i)
        conn.send(("start", i, kind))
        args = (codec, data, limits["slow_s"], limits["memory_mb"], limits["hard_s"])
        measured = decode_case(*args)
        if measured[0] in ("slow", "memory"):  # a first use imports a backend (torch, diffusers) once: measure again
            measured = decode_case(*args)
        conn.send(("done", i, kind, *measured))
    conn.close()


def run(
    files: Sequence[bytes],
    seed: int,
    cases: int,
    *,
    workers: int = 1,
    max_pixels: int = DEFAULT_DECODE_PIXELS,
    slow_s: float = 2.0,
    memory_mb: float = 300.0,
    cap_mb: float = 2048.0,
    hard_s: float = 20.0,
    progress: Callable[[int], None] | None = None,
) -> list[Result]:
    """Decode cases ``0 .. cases-1`` of ``seed`` in ``workers`` forked processes; a worker that dies
    records a ``crash`` for the case it was decoding and is replaced."""
    ctx = multiprocessing.get_context("fork")
    limits = {"slow_s": slow_s, "memory_mb": memory_mb, "cap_mb": cap_mb, "hard_s": hard_s}
    results: list[Result] = []
    pending = [list(range(w, cases, workers)) for w in range(workers)]
    running: dict[int, tuple[BaseProcess, Connection, list[Any]]] = {}

    def start(w: int) -> None:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(child, files, seed, pending[w], limits, max_pixels), daemon=True)
        proc.start()
        child.close()
        running[w] = (proc, parent, [])

    for w in range(workers):
        if pending[w]:
            start(w)
    from multiprocessing.connection import wait

    while running:
        conns = {running[w][1]: w for w in running}
        for conn in cast(list[Connection], wait(list(conns), timeout=hard_s * 3)):
            w = conns[conn]
            proc, _, current = running[w]
            try:
                msg = conn.recv()
            except EOFError:
                proc.join()
                if current:
                    i, kind = current
                    results.append(Result(i, kind, "crash", 0.0, 0.0, 0.0, f"worker exit code {proc.exitcode}"))
                    pending[w] = pending[w][pending[w].index(i) + 1 :]
                    del running[w]
                    if pending[w]:
                        start(w)
                else:
                    del running[w]
                continue
            if msg[0] == "start":
                current[:] = [msg[1], msg[2]]
            else:
                _, i, kind, outcome, seconds, growth, wall, detail = msg
                results.append(Result(i, kind, outcome, seconds, growth, wall, detail))
                current.clear()
                if progress:
                    progress(len(results))
    return sorted(results, key=lambda r: r.index)


def table(results: Sequence[Result]) -> str:
    """Markdown outcome table by mutation class: counts, the most CPU and wall time and the largest peak growth."""
    header = "| class | cases | " + " | ".join(OUTCOMES) + " | max CPU s | max wall s | max MB |"
    lines = [header, "|" + " --- |" * (len(OUTCOMES) + 5)]
    for kind in (*KINDS, "all"):
        rows = [r for r in results if kind in ("all", r.kind)]
        if not rows:
            continue
        counts = " | ".join(str(sum(r.outcome == o for r in rows)) for o in OUTCOMES)
        lines.append(
            f"| {kind} | {len(rows)} | {counts} | {max(r.seconds for r in rows):.2f} | {max(r.wall for r in rows):.2f} "
            f"| {max(r.growth_mb for r in rows):.0f} |"
        )
    return "\n".join(lines)


def failures(results: Sequence[Result]) -> Iterator[Result]:
    return (r for r in results if r.outcome not in GOOD)


__all__ = [
    "KINDS", "OUTCOMES", "Result", "craft_v1", "decode_case", "failures", "make_case", "png_claiming", "run", "seed_files", "swap", "table",
]
