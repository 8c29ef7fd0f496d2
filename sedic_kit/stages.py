"""Coding stages as they happen: timed, and announced to a listener (progress displays)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

StageListener = Callable[[str], None]
_stage_listener: ContextVar[StageListener | None] = ContextVar("sedic_stage_listener", default=None)


@contextmanager
def report_stages(listener: StageListener) -> Iterator[None]:
    """Call ``listener(stage)`` as each coding stage starts (describe, ground, segment, reference,
    text, masks, restore), e.g. to show progress; applies to this thread/context only."""
    token = _stage_listener.set(listener)
    try:
        yield
    finally:
        _stage_listener.reset(token)


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Announce stage ``key`` and add its wall time to ``timings[key]``."""
    listener = _stage_listener.get()
    if listener is not None:
        listener(key)
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
