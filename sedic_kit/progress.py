"""What the command line shows while it works: a progress bar on a terminal, warnings at the end.

The bar (images done, ETA, the image in flight and its coding stage) is drawn only when stderr
is a terminal and ``--quiet`` is not given; warnings are counted per kind and printed once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from .codec import report_stages

QUIET = False
"""Set by ``--quiet``: no progress display and no per-image lines."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images`` (``nouns`` for irregular plurals: ``process``, ``processes``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def shows_progress(console: Console) -> bool:
    """Whether a live display belongs on ``console`` (a terminal, not ``--quiet``)."""
    return not QUIET and console.is_terminal


class ImageProgress:
    """A bar over images (or steps) with ETA; the current image's stage (describe ... restore) beside it."""

    def __init__(self, console: Console, total: int, what: str = "images") -> None:
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
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    @contextmanager
    def item(self, name: str) -> Iterator[None]:
        """Show ``name`` and its stages while the block runs; count it done afterwards."""
        self.progress.update(self.task, description=name, stage="")
        try:
            with report_stages(lambda stage: self.progress.update(self.task, stage=stage)):
                yield
        finally:
            self.progress.advance(self.task)

    def print(self, console: Console, line: str) -> None:
        """Print ``line`` on ``console``; above the bar when both share the terminal."""
        if self.progress.live.is_started and console.is_terminal:
            self.progress.console.print(line)
        else:
            console.print(line)

    def done(self, count: int) -> None:
        """Set how many are done (e.g. training steps, a resumed run starting past zero)."""
        self.progress.update(self.task, completed=count)


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
