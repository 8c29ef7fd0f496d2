"""The output directory of ``sedic-kit run``: one name per input, and a ``results.json`` that
matches the files at every moment; the two phases of a run (encode every image, then decode each).

The encode phase writes each image's ``.sedic`` as soon as it is encoded and lists it under
``pending`` (encoded, not yet decoded); the decode phase reads it back, writes the
reconstruction and moves the record to ``images``. Every change is made under an exclusive
``flock`` on the directory itself (runs sharing one ``--out`` take turns; no lock file is left),
with Ctrl-C held off until it is complete: a record's old version is withdrawn before its files
are replaced (atomically), then the report is rewritten (atomically). So the report lists
exactly the files in place, whenever a run stops.

One ``--out`` holds one setup: the report carries the fingerprint of the profile (overrides
applied), plugin and sedic-kit versions and target rate; a run with another setup is refused
with what differs. A rerun skips images whose outputs are complete and whose input is unchanged
(its SHA-256), decodes those left encoded, and encodes the rest; ``redo`` recodes them all.
Files the directory's report does not list are never replaced without ``force``, and an input
never. Inputs whose names would collide (``a.png`` and ``a.jpg``, or two ``a.png`` from
different folders) get distinct output names (``a``, ``a-jpg``, ``a-png-2``, ...); an input
keeps the name it was given by an earlier run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from .codec import Codec, finite
from .files import save_png, write_atomic
from .errors import SedicError
from .eval.results import results_json
from .fingerprint import fingerprint, setup_changes
from .imaging import psnr
from .outputs import same_file
from .profiles import Profile
from .progress import WarningTally, plural
from .semantics import missing_semantics

REPORT = "results.json"


class OutputConflict(SedicError):
    """The ``--out`` directory holds another setup's results, or files a run must not replace."""


@dataclass
class Report:
    """What ``results.json`` lists: finished images, encoded ones awaiting decode, failures."""

    images: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str | None = None
    setup: dict[str, Any] | None = None

    def without(self, image: Path) -> Report:
        """This report with nothing about ``image``."""
        def keep(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in records if not same_file(r["image"], image)]

        return Report(keep(self.images), keep(self.pending), keep(self.failures), self.fingerprint, self.setup)

    def owner(self, name: str) -> dict[str, Any] | None:
        """The record (finished or pending) whose outputs are called ``name``."""
        return next((r for r in [*self.images, *self.pending] if Path(r["sedic"]).stem == name), None)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) off until the block is done, then deliver it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)


@dataclass(frozen=True)
class Planned:
    """One input of a run and what is left to do for it."""

    image: Path
    name: str
    sha256: str
    state: Literal["done", "encoded", "todo"]


@dataclass(frozen=True)
class Encoded:
    """One image after the encode phase: its ``.sedic`` bytes and its record's encoder fields."""

    image: Path
    data: bytes
    fields: dict[str, Any]


class RunDirectory:
    """``results.json`` and the per-image outputs of one ``--out`` directory, for one setup."""

    def __init__(self, out_dir: Path, profile: Profile | None, setup: dict[str, Any]) -> None:
        """Claim ``out_dir`` for ``setup`` (an empty report when there is none); an unreadable
        report or another setup's stops the run here, before the first image."""
        self.out_dir = out_dir
        self.profile = profile
        self.setup = json.loads(json.dumps(setup, default=str))  # as the report holds it
        self.fingerprint = fingerprint(self.setup)
        self.report_path = out_dir / REPORT
        out_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self.report_path.exists():
                self._write(Report())
            self._read()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The directory's lock (waiting for it can be interrupted), with Ctrl-C held off inside."""
        fd = os.open(self.out_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with interrupts_held():
                yield
        finally:
            os.close(fd)  # releases the lock

    def _read(self) -> Report:
        """The report as it is now; another setup's is an :class:`OutputConflict`."""
        try:
            data = json.loads(self.report_path.read_text(encoding="utf-8"))
            report = Report(data["images"], data.get("pending", []), data.get("failures", []), data.get("fingerprint"), data.get("setup"))
            if not all(isinstance(r, dict) and "image" in r and "sedic" in r for r in [*report.images, *report.pending]):
                raise ValueError("records without image and sedic")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise SedicError(
                f"{self.report_path}: not a sedic-kit run report ({exc}); move it away or choose another --out"
            ) from None
        if report.fingerprint != self.fingerprint:
            if not isinstance(report.setup, dict):
                why = "a sedic-kit without setup fingerprints"
            else:
                changed = setup_changes(report.setup, self.setup)
                why = "another setup: " + "; ".join(changed[:3]) + (f"; {len(changed) - 3} more" if len(changed) > 3 else "")
            raise OutputConflict(
                f"{self.out_dir} holds the results of {why}; choose another --out "
                f"(one --out holds one setup; it keeps its {plural(len(report.images), 'image')})"
            )
        return report

    def _write(self, report: Report) -> None:
        prof = self.profile
        images = sorted(report.images, key=lambda r: Path(r["sedic"]).name)
        data = results_json(prof.name if prof else "custom", prof.description if prof else "", prof.to_dict() if prof else None, images)
        tally = WarningTally()
        for record in images:
            tally.add(Path(record["image"]).name, record.get("warnings", []))
        data["warnings"] = [{"warning": message, "images": names} for message, names in tally.kinds.values()]
        data["pending"] = sorted(report.pending, key=lambda r: Path(r["sedic"]).name)
        data["failures"] = sorted(report.failures, key=lambda f: f["image"])
        data["fingerprint"] = self.fingerprint
        data["setup"] = self.setup
        write_atomic(self.report_path, (json.dumps(data, indent=2, default=str) + "\n").encode())

    def _name_for(self, image: Path, report: Report, taken: Collection[str] = ()) -> str:
        """The output name of ``image``: the one it already has, else the first free one."""
        owners = {Path(r["sedic"]).stem: r["image"] for r in [*report.images, *report.pending]}
        mine = [name for name, owner in owners.items() if same_file(owner, image)]
        if mine:
            return mine[0]
        suffix = image.suffix.lstrip(".").lower()
        candidates = [image.stem, f"{image.stem}-{suffix}"] if suffix else [image.stem]
        n = 2
        while True:
            for name in candidates:
                if name not in owners and name not in taken:
                    return name
            candidates = [f"{image.stem}-{suffix}-{n}" if suffix else f"{image.stem}-{n}"]
            n += 1

    def outputs(self, name: str) -> tuple[Path, Path]:
        return self.out_dir / f"{name}.sedic", self.out_dir / f"{name}.png"

    def plan(self, paths: list[Path], redo: bool = False, force: bool = False) -> list[Planned]:
        """What is left to do for each input. Outputs that would replace an input, or (without
        ``force``) a file the report does not list, stop the run here, before the first image."""
        with self._locked():
            report = self._read()
        planned: list[Planned] = []
        conflicts: list[str] = []
        for path in paths:
            name = self._name_for(path, report, {p.name for p in planned})
            sha256 = file_sha256(path) if path.is_file() else ""
            owner = report.owner(name)
            for output in self.outputs(name):
                if any(same_file(output, p) for p in paths):
                    raise OutputConflict(f"{output} would overwrite the input {path.name if same_file(output, path) else output.name}; choose another --out")
                if output.exists() and owner is None and not force:
                    conflicts.append(str(output))
            planned.append(Planned(path, name, sha256, "todo" if redo or owner is None else self._state(owner, sha256)))
        if conflicts:
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            raise OutputConflict(
                f"{conflicts[0]}{more} exists and is not listed in {self.report_path}; "
                "move it away, choose another --out, or pass --force to replace it"
            )
        return planned

    def _state(self, record: dict[str, Any], sha256: str) -> Literal["done", "encoded", "todo"]:
        """``done`` when the record's files are in place for this input, ``encoded`` when only its ``.sedic`` is."""
        sedic, png = self.outputs(Path(record["sedic"]).stem)
        if record.get("input_sha256") != sha256 or not sedic.is_file() or 8 * sedic.stat().st_size != record.get("file_bits"):
            return "todo"
        return "done" if "reconstruction" in record and png.is_file() else "encoded"

    def read_back(self, item: Planned) -> Encoded:
        """An image left encoded by an earlier run, from its ``.sedic`` and record."""
        with self._locked():
            report = self._read()
        record = report.owner(item.name)
        if record is None:
            raise SedicError(f"{item.image.name}: its record left {self.report_path} during the run")
        fields = {k: v for k, v in record.items() if k not in ("image", "sedic", "reconstruction", "psnr-rgb", "decoding_time", "decode_timings")}
        return Encoded(item.image, self.outputs(item.name)[0].read_bytes(), fields)

    def encoded(self, item: Encoded) -> Encoded:
        """Write one image's ``.sedic`` and list it as pending; return ``item``."""
        with self._locked():
            report = self._read()
            name = self._name_for(item.image, report)
            rest = report.without(item.image)
            if rest != report:  # withdraw the old record before its files change
                self._write(rest)
            sedic, png = self.outputs(name)
            if "reconstruction" in (report.owner(name) or {}):  # this image's earlier reconstruction, not of the new .sedic
                png.unlink(missing_ok=True)
            write_atomic(sedic, item.data)
            rest.pending.append({"image": str(item.image), "sedic": str(sedic), **item.fields})
            self._write(rest)
        return item

    def commit(self, image: Path, data: bytes, reconstruction: Image.Image, fields: dict[str, Any]) -> dict[str, Any]:
        """Write one image's outputs and its record; return the record."""
        with self._locked():
            report = self._read()
            name = self._name_for(image, report)
            rest = report.without(image)
            if rest.images != report.images:  # withdraw the old record before its files change
                self._write(rest)
            sedic, png = self.outputs(name)
            write_atomic(sedic, data)
            save_png(reconstruction, png)
            record = {"image": str(image), "sedic": str(sedic), "reconstruction": str(png), **fields}
            rest.images.append(record)
            self._write(rest)
        return record

    def fail(self, image: Path, error: str) -> None:
        """Record that ``image`` failed in this run (outputs of an earlier run stay listed)."""
        with self._locked():
            report = self._read()
            report.failures = [f for f in report.failures if not same_file(f["image"], image)]
            report.failures.append({"image": str(image), "error": error})
            self._write(report)

    def progress(self, paths: list[Path]) -> tuple[int, int]:
        """How many of ``paths`` are finished, and how many are encoded awaiting decode."""
        with self._locked():
            report = self._read()
        def count(records: list[dict[str, Any]]) -> int:
            return sum(any(same_file(r["image"], p) for r in records) for p in paths)

        return count(report.images), count(report.pending)


def encode_image(codec: Codec, image: Path, sha256: str, target_bpp: float | None = None) -> Encoded:
    """The encode phase of one image (nothing is written)."""
    source = codec.load(image)
    start = time.perf_counter()
    result = codec.encode(source, target_bpp)
    seconds = time.perf_counter() - start
    fields = {
        "profile": codec.profile.name if codec.profile else "custom",
        "input_sha256": sha256,
        "file_bits": 8 * len(result.data),
        **result.summary(),
        "semantics": missing_semantics(codec.describer.name, result.payload) is None,  # the codec warns when not
        "warnings": list(result.warnings),
        "encoding_time": seconds,
    }
    return Encoded(image, result.data, fields)


def decode_image(codec: Codec, encoded: Encoded, directory: RunDirectory) -> dict[str, Any]:
    """The decode phase of one image: decode its bytes, then commit its files and record; return the record."""
    start = time.perf_counter()
    decoded = codec.decode_detailed(encoded.data)
    seconds = time.perf_counter() - start
    source = codec.load(encoded.image)  # PSNR against the input as the encoder saw it
    fields = {
        **encoded.fields,
        "psnr-rgb": finite(psnr(decoded.image, source.image)),
        "decoding_time": seconds,
        "decode_timings": decoded.timings,
    }
    return directory.commit(encoded.image, encoded.data, decoded.image, fields)
