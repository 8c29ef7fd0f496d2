"""Run a native decoder on untrusted bytes in a forked child, so that a crash it cannot guard
against (a segfault, an abort) is a one-line :class:`FormatError`, not the end of the process."""

from __future__ import annotations

import multiprocessing
import resource
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from .errors import FormatError, SedicError

T = TypeVar("T")
CHILD_MEMORY = 4 << 30
"""Address space a child may add to what it inherits (a runaway allocation is a MemoryError)."""
last_growth_mb = 0.0
"""How far the last child's peak resident size rose above its start, in MB (the fuzzer's memory bound)."""


def run_isolated(fn: Callable[[], T], what: str) -> T:
    """``fn()`` computed in a forked copy of this process, its result sent back (it must pickle).

    Whatever ``fn`` raises becomes a :class:`FormatError` (with a :class:`SedicError`'s message as
    it was, another exception named after ``what``), and so does the child dying (by a signal or
    an exit).
    The child is killed if this process stops waiting (a timer, Ctrl-C).
    """
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn), daemon=True)
    proc.start()
    child.close()
    global last_growth_mb
    try:
        try:
            status, value, last_growth_mb = parent.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode or 0
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise FormatError(f"{what} crashed on this data ({how})") from None
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
    if status == "ok":
        return value  # type: ignore[no-any-return]
    if status == "sedic":
        raise FormatError(value)
    raise FormatError(f"{what} failed on this data ({value})")


def single_threaded_after_fork() -> None:
    """In a forked child of a process that ran torch: one intra-op thread, since the parent's
    OpenMP pool did not survive the fork and its next parallel region would wait forever."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def _child(conn, fn: Callable[[], object]) -> None:  # type: ignore[no-untyped-def]
    with open("/proc/self/statm") as fh:
        inherited = int(fh.read().split()[0]) * resource.getpagesize()
    with open("/proc/self/clear_refs", "w") as fh:  # the peak from here on (Linux >= 4.0)
        fh.write("5")
    start_kb = _status_kb("VmRSS")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = inherited + CHILD_MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    single_threaded_after_fork()
    try:
        message: tuple[str, object] = ("ok", fn())
    except SedicError as exc:
        message = ("sedic", str(exc))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        text = " ".join(str(exc).split())
        message = ("error", f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    conn.send((*message, (_status_kb("VmHWM") - start_kb) / 1024))
    conn.close()
