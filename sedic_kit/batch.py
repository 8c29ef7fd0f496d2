"""The output directory of ``sedic-kit run``: one name per input, and a ``results.json`` that
matches the files at every moment; the two phases of a run (encode every image, then decode each).

A run encodes every image first, keeping each ``.sedic`` in memory (a few kB), so that the
encoder's models can be released before the decoder's load; then it decodes each image and
commits it. No file of an image is written before its commit, so an interrupted run leaves
whole images only (and the failures recorded so far); a rerun redoes the others.

Each finished image is committed under an exclusive lock on ``OUT/.results.json.lock`` (so runs
sharing one ``--out`` take turns): its old record is withdrawn from ``results.json``, its
``.sedic`` and PNG are written (atomically), then the report is rewritten (atomically) with the
new record. So every image the report lists has exactly the files it describes; an image whose
files are being replaced is briefly absent. Inputs whose names would collide (``a.png`` and
``a.jpg``, or two ``a.png`` from different folders) get distinct output names (``a``,
``a-jpg``, ``a-png-2``, ...); an input keeps the name it was given by an earlier run.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .codec import Codec, finite, save_png, write_atomic
from .errors import SedicError
from .eval.results import results_json
from .imaging import psnr
from .profiles import Profile

REPORT = "results.json"


class RunDirectory:
    """``results.json`` and the per-image outputs of one ``--out`` directory."""

    def __init__(self, out_dir: Path, profile: Profile | None) -> None:
        self.out_dir = out_dir
        self.profile = profile
        self.report_path = out_dir / REPORT
        out_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._read()  # an unreadable report stops the run before the first image

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.out_dir / f".{REPORT}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Records and failures currently in the report (empty when there is none yet)."""
        if not self.report_path.exists():
            return [], []
        try:
            data = json.loads(self.report_path.read_text(encoding="utf-8"))
            images, failures = data["images"], data.get("failures", [])
            if not all(isinstance(r, dict) and "image" in r and "sedic" in r for r in images):
                raise ValueError("records without image and sedic")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise SedicError(
                f"{self.report_path}: not a sedic-kit run report ({exc}); move it away or choose another --out"
            ) from None
        return images, failures

    def _write(self, images: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        prof = self.profile
        images = sorted(images, key=lambda r: Path(r["sedic"]).name)
        report = results_json(prof.name if prof else "custom", prof.description if prof else "", prof.to_dict() if prof else None, images)
        report["failures"] = sorted(failures, key=lambda f: f["image"])
        write_atomic(self.report_path, (json.dumps(report, indent=2) + "\n").encode())

    def _name_for(self, image: Path, images: list[dict[str, Any]]) -> str:
        """The output name of ``image``: the one it already has, else the first free one."""
        owners = {Path(r["sedic"]).stem: Path(r["image"]).resolve() for r in images}
        mine = [name for name, owner in owners.items() if owner == image.resolve()]
        if mine:
            return mine[0]
        suffix = image.suffix.lstrip(".").lower()
        candidates = [image.stem, f"{image.stem}-{suffix}"] if suffix else [image.stem]
        n = 2
        while True:
            for name in candidates:
                if name not in owners:
                    return name
            candidates = [f"{image.stem}-{suffix}-{n}" if suffix else f"{image.stem}-{n}"]
            n += 1

    def commit(self, image: Path, data: bytes, reconstruction: Image.Image, fields: dict[str, Any]) -> dict[str, Any]:
        """Write one image's outputs and its record; return the record."""
        with self._locked():
            images, failures = self._read()
            name = self._name_for(image, images)
            others = [r for r in images if Path(r["sedic"]).stem != name]
            if len(others) != len(images):  # withdraw the old record before its files change
                self._write(others, failures)
            sedic = write_atomic(self.out_dir / f"{name}.sedic", data)
            png = save_png(reconstruction, self.out_dir / f"{name}.png")
            record = {"image": str(image), "sedic": str(sedic), "reconstruction": str(png), **fields}
            self._write([*others, record], [f for f in failures if Path(f["image"]).resolve() != image.resolve()])
        return record

    def fail(self, image: Path, error: str) -> None:
        """Record that ``image`` failed in this run (outputs of an earlier run stay listed)."""
        with self._locked():
            images, failures = self._read()
            failures = [f for f in failures if Path(f["image"]).resolve() != image.resolve()]
            self._write(images, [*failures, {"image": str(image), "error": error}])


@dataclass(frozen=True)
class Encoded:
    """One image after the encode phase: its ``.sedic`` bytes and its record's encoder fields."""

    image: Path
    data: bytes
    fields: dict[str, Any]
    seconds: float


def encode_image(codec: Codec, image: Path, target_bpp: float | None = None) -> Encoded:
    """The encode phase of one image (nothing is written)."""
    source = codec.load(image)
    start = time.perf_counter()
    result = codec.encode(source, target_bpp)
    seconds = time.perf_counter() - start
    fields = {
        "profile": codec.profile.name if codec.profile else "custom",
        "file_bits": 8 * len(result.data),
        **result.summary(),
        "warnings": list(result.warnings),
    }
    return Encoded(image, result.data, fields, seconds)


def decode_image(codec: Codec, encoded: Encoded, directory: RunDirectory) -> dict[str, Any]:
    """The decode phase of one image: decode its bytes, then commit its files and record; return the record."""
    start = time.perf_counter()
    decoded = codec.decode_detailed(encoded.data)
    seconds = time.perf_counter() - start
    source = codec.load(encoded.image)  # PSNR against the input as the encoder saw it
    fields = {
        **encoded.fields,
        "psnr-rgb": finite(psnr(decoded.image, source.image)),
        "encoding_time": encoded.seconds,
        "decoding_time": seconds,
        "decode_timings": decoded.timings,
    }
    return directory.commit(encoded.image, encoded.data, decoded.image, fields)
