"""What the command line shows while it works: a progress bar on a terminal, plain lines
elsewhere, warnings at the end.

On a terminal the bar (images done, ETA, the image in flight and its coding stage) is drawn;
when stderr is not a terminal (a pipe, a log file, a batch system) a plain line with the same
facts is printed whenever ``SEDIC_PROGRESS_SECONDS`` (default 10) seconds have passed without
one; ``--quiet`` turns both off. Warnings are counted per kind and printed once.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from .stages import report_stages

QUIET = False
"""Set by ``--quiet``: no progress display and no per-image lines."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images`` (``nouns`` for irregular plurals: ``process``, ``processes``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def shows_progress(console: Console) -> bool:
    """Whether a live display belongs on ``console`` (a terminal, not ``--quiet``)."""
    return not QUIET and console.is_terminal


def plain_interval() -> float:
    """Seconds between plain progress lines off a terminal (``SEDIC_PROGRESS_SECONDS``, default 10)."""
    value = os.environ.get("SEDIC_PROGRESS_SECONDS", "")
    try:
        return max(float(value), 0.1) if value else 10.0
    except ValueError:
        return 10.0


def elapsed(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = int(seconds)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s" if s < 3600 else f"{s // 3600} h {s % 3600 // 60:02d} min"


class PlainProgress:
    """Progress as plain lines for a log: ``encoding kodim05.png: masks (4/24 done, 41 s)`` whenever
    ``interval`` seconds pass without a line (a thread keeps them coming during one long stage)."""

    def __init__(self, console: Console, total: int, what: str, interval: float) -> None:
        self.console, self.total, self.what, self.interval = console, total, what, interval
        self.done = 0
        self.current = ""
        self.stage = ""
        self.start = self.last = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def begin(self) -> None:
        self._thread.start()

    def end(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def update(self, current: str | None = None, stage: str | None = None, done: int | None = None) -> None:
        self.current = self.current if current is None else current
        self.stage = self.stage if stage is None else stage
        self.done = self.done if done is None else done
        self._line_if_due()

    def _line_if_due(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self.last < self.interval:
                return
            self.last = now
            doing = (self.current or self.what) + (f": {self.stage}" if self.stage else "")
            self.console.print(f"{doing} ({self.done}/{self.total} done, {elapsed(now - self.start)})")

    def _tick(self) -> None:
        while not self._stop.wait(max(self.interval - (time.monotonic() - self.last), 0.05)):
            self._line_if_due()


class ImageProgress:
    """A bar over images (or steps) with ETA; the current image's stage (describe ... restore) beside it.
    Off a terminal, plain lines every few seconds instead (see :class:`PlainProgress`)."""

    def __init__(self, console: Console, total: int, what: str = "images") -> None:
        self.plain = None if QUIET or console.is_terminal else PlainProgress(console, total, what, plain_interval())
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stage]}"),
            console=console,
            transient=True,
            disable=not shows_progress(console),
        )
        self.task: TaskID = self.progress.add_task(what, total=total, stage="")

    def __enter__(self) -> ImageProgress:
        self.progress.start()
        if self.plain:
            self.plain.begin()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.plain:
            self.plain.end()
        self.progress.stop()

    @contextmanager
    def item(self, name: str) -> Iterator[None]:
        """Show ``name`` and its stages while the block runs; count it done afterwards."""
        self.progress.update(self.task, description=name, stage="")
        if self.plain:
            self.plain.update(current=name, stage="")

        def stage(stage: str) -> None:
            self.progress.update(self.task, stage=stage)
            if self.plain:
                self.plain.update(stage=stage)

        try:
            with report_stages(stage):
                yield
        finally:
            self.progress.advance(self.task)
            if self.plain:
                self.plain.update(current="", stage="", done=self.plain.done + 1)

    def print(self, console: Console, line: str) -> None:
        """Print ``line`` on ``console``; above the bar when both share the terminal."""
        if self.progress.live.is_started and console.is_terminal:
            self.progress.console.print(line)
        else:
            console.print(line)

    def done(self, count: int) -> None:
        """Set how many are done (e.g. training steps, a resumed run starting past zero)."""
        self.progress.update(self.task, completed=count)
        if self.plain:
            self.plain.update(done=count)


def warning_kind(message: str) -> str:
    """Messages that differ only in numbers or parenthesised details are one kind."""
    return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"\s*\([^)]*\)", "", message)).strip()


class WarningTally:
    """Warnings of a batch by kind, with the images each came from; printed once per kind."""

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[str, list[str]]] = {}

    def add(self, image: str, warnings: list[str]) -> None:
        for message in warnings:
            first, images = self.kinds.setdefault(warning_kind(message), (message, []))
            if image not in images:
                images.append(image)

    def lines(self, total: int) -> list[str]:
        """One line per kind: its first message and the images it came from (of ``total``)."""
        out = []
        for message, images in self.kinds.values():
            shown = ", ".join(images[:5]) + (", ..." if len(images) > 5 else "")
            where = shown if total == 1 else f"{len(images)} of {plural(total, 'image')}: {shown}"
            out.append(f"{message} [{where}]")
        return out

    def print(self, console: Console, total: int) -> None:
        for line in self.lines(total):
            console.print(Text.assemble(("warning:", "yellow"), f" {line}"))
