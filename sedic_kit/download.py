"""Resumable downloads checked against published sizes and SHA-256 digests.

A file is fetched into ``NAME.part`` beside its target; an interrupted transfer resumes with an
HTTP ``Range`` request (a server that ignores it sends the whole file again), up to
:data:`ATTEMPTS` times per call and across calls. Only a complete file whose size and digest
match what was published is renamed to the target; one that does not match is deleted.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .version import __version__
from .errors import SedicError

ATTEMPTS = 3
"""Transfers per call before a cut download is reported (each resumes where the last stopped)."""
CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]
"""``progress(bytes_so_far, total_or_None)``, called as data arrives."""


@dataclass(frozen=True)
class Remote:
    """One published file: its URL and, where published, its size and SHA-256 (with their source)."""

    url: str
    size: int | None = None
    sha256: str | None = None
    checksum_source: str | None = None
    """URL of the list that publishes ``size`` and ``sha256``."""

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(remote: Remote, url: str, target: Path, progress: Progress | None = None) -> Path:
    """Download ``url`` (``remote.url`` or a mirror's copy of it) to ``target``, resuming a
    ``.part`` left by an earlier call; check it against ``remote``'s size and SHA-256."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _transfer(remote, url, part, progress or (lambda done, total: None))
            break
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code != 416:
                raise SedicError(f"{remote.filename}: {url} answered HTTP {exc.code} {exc.reason}") from None
            if attempt == ATTEMPTS:
                have = part.stat().st_size if part.is_file() else 0
                raise SedicError(
                    f"{remote.filename}: download from {url} stopped at {have} of {remote.size or '?'} bytes "
                    f"after {ATTEMPTS} attempts ({_reason(exc)}); rerun the same command to resume"
                ) from None
    _check(remote, url, part)
    part.replace(target)
    return target


def _transfer(remote: Remote, url: str, part: Path, progress: Progress) -> None:
    """One request: append to ``part`` from where it ends (or start over); raise when cut short."""
    have = part.stat().st_size if part.is_file() else 0
    if remote.size is not None and have >= remote.size:
        if have == remote.size:
            return
        part.unlink()
        have = 0
    headers = {"User-Agent": f"sedic-kit/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the range starts at or past the end: the .part is stale, start over
            part.unlink(missing_ok=True)
        raise
    with response:
        start = _resumed_at(response.headers.get("Content-Range")) if getattr(response, "status", None) == 206 else 0
        if start not in (0, have):
            raise http.client.HTTPException(f"the server resumed at byte {start}, not {have}")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else remote.size
        if remote.size is not None and total != remote.size:
            raise SedicError(f"{remote.filename}: {url} has {total} bytes, expected {remote.size} ({remote.checksum_source})")
        done = start
        with part.open("ab" if start else "wb") as out:
            progress(done, total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                progress(done, total)
    if total is not None and done < total:
        raise http.client.IncompleteRead(b"", total - done)


def _resumed_at(content_range: str | None) -> int:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    if match is None:
        raise http.client.HTTPException(f"unexpected Content-Range {content_range!r}")
    return int(match.group(1))


def _check(remote: Remote, url: str, part: Path) -> None:
    """Delete ``part`` and raise unless it has the published size and SHA-256."""
    size = part.stat().st_size
    problem = ""
    if remote.size is not None and size != remote.size:
        problem = f"{size} bytes, expected {remote.size}"
    elif remote.sha256 is not None and (digest := sha256_file(part)) != remote.sha256:
        problem = f"SHA-256 {digest}, expected {remote.sha256}"
    if problem:
        part.unlink()
        raise SedicError(
            f"{remote.filename} from {url}: {problem} ({remote.checksum_source}); the download was deleted, nothing was extracted"
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed early"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
