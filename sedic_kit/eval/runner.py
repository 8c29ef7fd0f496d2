"""Resumable, distributable evaluation of one profile on a directory of images.

Layout of ``OUT/<profile>/`` (``OUT/<profile>/bpp-<target>/`` for each ``--target-bpp`` of a
rate sweep): ``records/<stem>.json`` (one per finished image, written last and
atomically: its presence means the image is done), ``sedic/``, ``recon/``, ``reference/``
(the decoded reference upsampled to full size), ``manifest.json`` and ``results.json``.
A rerun skips images whose record carries the same configuration fingerprint. Under
``accelerate launch`` the remaining images are split across processes and the records are
gathered on rank 0, which computes set metrics and writes the summary.
"""

from __future__ import annotations

import io
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console

from .. import __version__
from ..batch import Encoded
from ..codec import Codec
from ..files import save_png, write_atomic
from ..errors import SedicError
from ..fingerprint import fingerprint, setup_changes, setup_of
from ..imaging import DEFAULT_MAX_PIXELS, upsample
from ..plugins import get_registry
from ..progress import ImageProgress, WarningTally, plural
from ..roles import ENCODER_ROLES, one_line
from ..semantics import missing_semantics
from .datasets import Protocol, list_images, prepare
from .metrics import DEFAULT_CLIP_MODEL, MetricSuite
from .overlay import mask_overlay
from .patch_fid import PATCH, RealismProtocol
from .results import results_json

PACKAGES = ("numpy", "pillow", "torch", "torchmetrics", "pytorch-msssim", "transformers", "accelerate", "torchvision", "torch-fidelity", "piq", "pyiqa", "matplotlib")
VOLATILE_KEYS = ("encoding_time", "decoding_time", "timings", "process")
"""Record fields that vary between runs of the same configuration (timings, which process ran it)."""
SETUP = "setup.json"
"""The setup whose records a profile's directory holds (written before the first record)."""


@dataclass
class EvalConfig:
    """What to evaluate and where to write it."""

    profile: str
    data: Path
    out: Path
    overrides: list[str] = field(default_factory=list)
    protocol: Protocol = "as-is"
    metrics: list[str] | None = None
    clip_model: str = DEFAULT_CLIP_MODEL
    max_pixels: int = DEFAULT_MAX_PIXELS
    target_bpp: float | None = None
    """Fit every file to this rate (rate control); ``None`` codes at the profile's own setting."""
    force: bool = False
    """Replace records of another setup instead of refusing to."""
    realism: RealismProtocol = PATCH
    """How FID/KID sample the set (256 px patches and the shifted grid by default)."""


def dist_state() -> Any:
    """accelerate's process state (a single process when not launched)."""
    from accelerate import PartialState

    return PartialState(cpu=True) if not _has_accelerator() else PartialState()


def shutdown_distributed() -> None:
    """Wait for every rank, then tear the process group down: a rank that exits while its gloo
    threads are alive (rank 0 still writing the report) can abort with SIGABRT."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


def remove_partials(root: Path) -> None:
    """Delete temporary files an interrupted write left behind."""
    if root.is_dir():
        for tmp in root.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def software() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"sedic_kit": __version__, "python": sys.version.split()[0], "platform": platform.platform(), "packages": versions}


def plugin_versions(codec: Codec) -> dict[str, Any]:
    registry = get_registry()
    out: dict[str, Any] = {}
    for role, plugin in codec.plugins.items():  # role -> plugin, its version and distribution
        src = registry.sources.get(registry.owner.get((role, plugin.name), ""), None)
        out[role.value] = {
            "plugin": plugin.name,
            "version": plugin.version,
            "distribution": src.distribution if src else None,
            "distribution_version": src.version if src else None,
        }
    return out


def setup_key(codec: Codec, cfg: EvalConfig, suite: MetricSuite) -> dict[str, Any]:
    """Everything that determines a record: the codec's setup (profile, plugin and sedic-kit versions), protocol, metrics."""
    return setup_of(
        codec,
        protocol=cfg.protocol,
        metrics=sorted(suite.image),
        clip_model=cfg.clip_model if "clipsim" in suite.image else None,
        target_bpp=cfg.target_bpp,
    )


def set_warnings(records: list[dict[str, Any]]) -> list[str]:
    """The set's warnings, one line per kind with the images it came from."""
    tally = WarningTally()
    for r in records:
        tally.add(r["image"], r.get("warnings", []))
    return tally.lines(len(records))


class Evaluation:
    """One profile on one image set."""

    def __init__(self, cfg: EvalConfig, suite: MetricSuite | None = None, codec: Codec | None = None) -> None:
        """``codec``: reuse one built from ``cfg``'s profile and overrides (a sweep's other rates)."""
        self.cfg = cfg
        self.codec = codec or Codec.from_profile(  # it decodes its own files: the encoder's limit holds for both
            cfg.profile, overrides=cfg.overrides, max_pixels=cfg.max_pixels, max_decode_pixels=cfg.max_pixels
        )
        self.name = self.codec.profile.name if self.codec.profile else "custom"
        self.point = self.name if cfg.target_bpp is None else f"{self.name} @ {cfg.target_bpp:g} bpp"
        self.dir = cfg.out / self.name if cfg.target_bpp is None else cfg.out / self.name / f"bpp-{cfg.target_bpp:g}"
        self.suite = suite or MetricSuite(cfg.metrics, cfg.clip_model, cfg.realism)
        self.setup = setup_key(self.codec, cfg, self.suite)
        self.fingerprint = fingerprint(self.setup)
        self.paths = list_images(cfg.data)

    def record_path(self, image: Path) -> Path:
        return self.dir / "records" / f"{image.stem}.json"

    def finished(self, image: Path) -> dict[str, Any] | None:
        """The record of ``image`` when it was finished by a run of this configuration."""
        path = self.record_path(image)
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return record if record.get("fingerprint") == self.fingerprint else None

    def encode(self, path: Path) -> Encoded:
        """The encode phase of one image: the file's bytes and its record's encoder fields (nothing written)."""
        source = prepare(path, self.cfg.protocol, self.cfg.max_pixels)
        start = time.perf_counter()
        result = self.codec.encode(source, self.cfg.target_bpp)
        seconds = time.perf_counter() - start
        missing = missing_semantics(self.codec.describer.name, result.payload)
        fields = {
            "bits": dict(result.bits),
            "bpp_sections": result.bpp_sections,
            "semantics": missing is None,
            "warnings": [*result.warnings, *([missing] if missing else [])],
            "notes": list(result.notes),
            "encoding_time": seconds,
            "timings": {f"encode.{k}": v for k, v in result.timings.items()},
        }
        return Encoded(path, result.data, fields)

    def decode(self, encoded: Encoded, process: int = 0) -> dict[str, Any]:
        """The decode phase of one image: decode, write its files, score it; the record is written last."""
        path, fields = encoded.image, encoded.fields
        sedic = write_atomic(self.dir / "sedic" / f"{path.stem}.sedic", encoded.data)
        start = time.perf_counter()
        decoded = self.codec.decode_detailed(sedic)
        dec_time = time.perf_counter() - start
        w, h = decoded.image.size
        save_png(decoded.image, self.dir / "recon" / f"{path.stem}.png")
        save_png(upsample(decoded.reference.convert("RGB"), w, h), self.dir / "reference" / f"{path.stem}.png")
        if decoded.payload.objects:
            save_png(mask_overlay(decoded.image, decoded.payload), self.dir / "masks" / f"{path.stem}.png")
        if sum(fields["bits"].values()) != 8 * len(encoded.data):
            raise SedicError(f"{sedic}: section bits do not add up to the file size")
        source = prepare(path, self.cfg.protocol, self.cfg.max_pixels)
        record = {
            "image": path.name,
            "target_bpp": self.cfg.target_bpp,
            "width": w,
            "height": h,
            "bytes": len(encoded.data),
            "bits": fields["bits"],
            "bpp": 8 * len(encoded.data) / (w * h),
            "bpp_sections": fields["bpp_sections"],
            "objects": [o.name for o in decoded.payload.objects],
            "caption": decoded.payload.caption,
            "descriptions": [{"name": o.name, "details": o.details} for o in decoded.payload.objects],
            "semantics": fields["semantics"],
            **self.suite.score(decoded.image, source.image),
            "warnings": fields["warnings"],
            "notes": fields["notes"],
            "fingerprint": self.fingerprint,
            "process": process,
            "encoding_time": fields["encoding_time"],
            "decoding_time": dec_time,
            "timings": {**fields["timings"], **{f"decode.{k}": v for k, v in decoded.timings.items()}},
        }
        write_json(self.record_path(path), record)
        return record

    def check_setup(self) -> None:
        """Refuse records of another setup in this directory (``force``: replace them), then write this setup."""
        stale = [p.name for p in sorted((self.dir / "records").glob("*.json")) if self.recorded_fingerprint(p) != self.fingerprint]
        if stale and not self.cfg.force:
            try:
                before = json.loads((self.dir / SETUP).read_text())
            except (OSError, json.JSONDecodeError):
                before = {}
            changed = setup_changes(before.get("setup", {}), self.setup) or ["an earlier sedic-kit's records (no setup.json)"]
            raise SedicError(
                f"{self.dir} holds {plural(len(stale), 'record')} of another setup ({'; '.join(changed)}); "
                "pass --force to replace them, or choose another --out"
            )
        write_json(self.dir / SETUP, {"fingerprint": self.fingerprint, "setup": self.setup})

    @staticmethod
    def recorded_fingerprint(path: Path) -> str | None:
        try:
            return json.loads(path.read_text()).get("fingerprint")
        except (OSError, json.JSONDecodeError, AttributeError):
            return None

    def run(self, console: Console | None = None) -> dict[str, Any] | None:
        """Evaluate the images not yet finished in two phases, as ``run`` does: encode every one,
        release the encoder's models, then decode and score each; on rank 0 return (and write) the summary."""
        console = console or Console(stderr=True)
        state = dist_state()
        if state.is_main_process:
            remove_partials(self.dir)
            self.check_setup()
        state.wait_for_everyone()
        todo = [p for p in self.paths if self.finished(p) is None]
        mine = todo[state.process_index :: state.num_processes]
        if state.is_main_process:
            console.print(
                f"{self.point}: {len(self.paths) - len(todo)} of {len(self.paths)} images already done, "
                f"{len(todo)} to evaluate on {plural(state.num_processes, 'process', 'processes')}",
                highlight=False,
            )
        shown = console if state.is_main_process else Console(file=io.StringIO())
        new: list[dict[str, Any]] = []
        try:
            encoded: list[Encoded] = []
            with ImageProgress(shown, len(mine), f"{self.point}: encoding") as bar:
                for path in mine:
                    with bar.item(f"{self.point}: encoding {path.name}"):
                        encoded.append(self.encode(path))
            if encoded:
                self.release_encoder(shown)
            with ImageProgress(shown, len(encoded), f"{self.point}: decoding") as bar:
                for item in encoded:
                    with bar.item(f"{self.point}: decoding {item.image.name}"):
                        new.append(self.decode(item, state.process_index))
        except BaseException:  # Ctrl-C or a failure: leave no partial file (finished writes have none)
            remove_partials(self.dir)
            raise
        if state.num_processes > 1:
            from accelerate.utils import gather_object

            new = gather_object(new)
        state.wait_for_everyone()
        if not state.is_main_process:
            return None
        return self.summarize({r["image"]: r for r in new}, state)

    def release_encoder(self, console: Console) -> None:
        """Free the describer's, grounder's and segmenter's models before the decode phase (as ``run`` does)."""
        try:
            self.codec.release(*ENCODER_ROLES)
        except Exception as exc:  # the encodings are done: decode them anyway, beside what is left
            console.print(f"warning: could not release the encoder's models ({one_line(exc)}); decoding beside them", highlight=False)

    def summarize(self, new: dict[str, dict[str, Any]], state: Any) -> dict[str, Any]:
        """Merge gathered and previously finished records (rank 0), add set metrics, write results and manifest."""
        records = []
        for path in self.paths:
            record = new.get(path.name) or self.finished(path)
            if record is None:
                raise SedicError(f"{path.name}: no record after the run")
            records.append(record)
        originals = [prepare(p, self.cfg.protocol, self.cfg.max_pixels).image for p in self.paths] if self.suite.set else []
        recons = [Image.open(self.dir / "recon" / f"{p.stem}.png").convert("RGB") for p in self.paths] if self.suite.set else []
        set_values, set_info = self.suite.score_set(recons, originals)
        prof = self.codec.profile
        summary = results_json(
            self.name,
            prof.description if prof else "",
            prof.to_dict() if prof else None,
            records,
            tuple(self.suite.image),
            {**set_values, **{k: None for k in self.suite.unavailable}},
        )
        summary["dataset"] = {"path": str(self.cfg.data), "protocol": self.cfg.protocol, "images": len(records)}
        summary["warnings"] = set_warnings(records)
        summary["realism"] = {"protocol": self.suite.realism.to_dict(), "metrics": set_info}
        summary["target_bpp"] = self.cfg.target_bpp
        summary["unavailable"] = dict(self.suite.unavailable)
        summary["dir"] = str(self.dir)
        write_json(self.dir / "results.json", summary)
        write_json(self.dir / "manifest.json", self.manifest(state, len(new)))
        return summary

    def manifest(self, state: Any, evaluated: int) -> dict[str, Any]:
        return {
            "profile": self.name,
            "fingerprint": self.fingerprint,
            "target_bpp": self.cfg.target_bpp,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "processes": state.num_processes,
            "backend": state.backend,
            "evaluated_this_run": evaluated,
            "images": len(self.paths),
            "data": str(self.cfg.data),
            "protocol": self.cfg.protocol,
            "overrides": list(self.cfg.overrides),
            "software": software(),
            "plugins": plugin_versions(self.codec),
            "metrics": {"computed": [*self.suite.image, *self.suite.set], "unavailable": dict(self.suite.unavailable)},
        }
