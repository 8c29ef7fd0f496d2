"""``sedic-kit run`` in two phases: every image encoded, the encoder plugins' models released, then
every image decoded; the files are those of encoding and decoding each image in turn."""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_image
from sedic_kit import ENCODER_ROLES, Codec, Payload, ProfileError, SourceImage, hookimpl
from sedic_kit import plugins as plugins_module
from sedic_kit.cli import main
from sedic_kit.plugins import Registry
from sedic_plugins.grounders.grounding_dino import GroundingDinoGrounder
from sedic_plugins.describers.hf_transformers import TransformersDescriber
from sedic_plugins.segmenters.sam import SamHFSegmenter
from sedic_plugins.describers.sidecar import SidecarDescriber
from sedic_plugins.restorers.upsample import UpsampleRestorer

LOADS: list[tuple[str, weakref.ref[Any]]] = []
"""Each model an encoder plugin loaded: its plugin, and a weak reference (dead once it is freed)."""
EVENTS: list[str] = []


class Watched:
    """Records the models the plugin loads (the transformers plugins return (processor, model, device))."""

    name: str
    _loaded: Any

    def load(self) -> Any:
        fresh = self._loaded is None
        loaded = super().load()  # type: ignore[misc]
        if fresh:
            LOADS.append((self.name, weakref.ref(loaded[1])))
        return loaded


class LlavaThenSidecar(Watched, TransformersDescriber):
    """Runs the tiny LLaVA (a real model in memory), then answers with the sidecar description
    (a random LLaVA writes gibberish, and the grounder and segmenter need objects to work on)."""

    name = "llava-then-sidecar"

    def describe(self, source: SourceImage) -> Payload:
        super().describe(source)
        EVENTS.append(f"describe {source.path.name if source.path else ''}")
        return SidecarDescriber().describe(source)


class WatchedDino(Watched, GroundingDinoGrounder):
    name = "watched-dino"


class WatchedSam(Watched, SamHFSegmenter):
    name = "watched-sam"


class Probe(UpsampleRestorer):
    """Upsamples, after noting which encoder models are still alive."""

    name = "probe"

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        alive = [name for name, ref in LOADS if ref() is not None]
        EVENTS.append(f"restore (alive: {', '.join(alive) or 'none'})")
        return super().restore(reference, payload)


class Picky(UpsampleRestorer):
    """Fails on the caption 'boom'; the caption 'stop' interrupts the run (Ctrl-C)."""

    name = "picky"

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        if payload.caption == "boom":
            raise RuntimeError("kaboom")
        if payload.caption == "stop":
            raise KeyboardInterrupt
        return super().restore(reference, payload)


class Stuck(SidecarDescriber):
    """Cannot let go of its model (an engine that died, say)."""

    name = "stuck"

    def release(self) -> None:
        raise RuntimeError("engine core died\nwith a traceback")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The installed plugins and the test plugins above, through the real registry (for this test only)."""
    registry = Registry()
    registry.load_entry_points()
    hooks = SimpleNamespace(
        register_describers=hookimpl(lambda register: [register(LlavaThenSidecar), register(Stuck)]),
        register_grounders=hookimpl(lambda register: register(WatchedDino)),
        register_segmenters=hookimpl(lambda register: register(WatchedSam)),
        register_restorers=hookimpl(lambda register: [register(Probe), register(Picky)]),
    )
    registry.add_module(hooks, "phases")
    monkeypatch.setattr(plugins_module, "_registry", registry)
    LOADS.clear()
    EVENTS.clear()
    return registry


def images(folder: Path, captions: list[str]) -> list[Path]:
    """One 96x64 image per caption, each with a sidecar description of one object (the disc)."""
    folder.mkdir()
    paths = []
    for i, caption in enumerate(captions):
        path = folder / f"{chr(ord('a') + i)}.png"
        synthetic_image(seed=i).save(path)
        sidecar = {"caption": caption, "objects": [{"name": "yellow disc", "details": "round", "box": [40, 12, 76, 46]}]}
        path.with_suffix(".json").write_text(json.dumps(sidecar))
        paths.append(path)
    return paths


PROFILE = """extends = "lite"

[describer]
plugin = "llava-then-sidecar"
model = "tiny/llava"
device = "cpu"
max_new_tokens = 16
repair = false

[grounder]
plugin = "watched-dino"
model = "tiny/grounding-dino"
device = "cpu"
box_threshold = 0.0
text_threshold = 0.0

[segmenter]
plugin = "watched-sam"
model = "tiny/sam"
device = "cpu"

[restorer]
plugin = "probe"
"""


def test_encoder_models_are_freed_before_the_first_decode_and_the_files_match_one_phase(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = images(tmp_path / "in", ["a disc", "another disc"])
    profile = tmp_path / "watched.toml"
    profile.write_text(PROFILE)
    out = tmp_path / "out"
    assert main(["run", str(a.parent), "--profile", str(profile), "--out", str(out)]) == 0, capsys.readouterr().err
    # one model per encoder plugin, loaded once for both images, and none alive when decoding starts
    assert sorted(name for name, _ in LOADS) == ["llava-then-sidecar", "watched-dino", "watched-sam"]
    assert EVENTS == ["describe a.png", "describe b.png", "restore (alive: none)", "restore (alive: none)"]
    report = json.loads((out / "results.json").read_text())
    assert [Path(r["image"]).name for r in report["images"]] == ["a.png", "b.png"]
    assert all(r["objects"] == ["yellow disc"] for r in report["images"])  # grounded and segmented
    # The same profile one image at a time (encode, decode, next), through the library: the same bytes and pixels.
    codec = Codec.from_profile(profile, registry=registry)
    for path in (a, b):
        result = codec.encode(path)
        assert (out / f"{path.stem}.sedic").read_bytes() == result.data
        assert np.array_equal(np.asarray(Image.open(out / f"{path.stem}.png")), np.asarray(codec.decode(result.data)))
    assert EVENTS[-1] == "restore (alive: llava-then-sidecar, watched-dino, watched-sam)"  # what one phase holds
    codec.release(*ENCODER_ROLES)  # the library's way (README)
    assert [name for name, ref in LOADS if ref() is not None] == []
    assert codec.encode(a).data == (out / "a.sedic").read_bytes()  # reloaded: the same answer
    with pytest.raises(ProfileError, match=r"^'encoder' is not a valid Role \(roles: describer, grounder, "):
        codec.release("encoder")


def test_decode_phase_failures_are_recorded_and_an_interrupt_leaves_only_whole_images(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, boom, stop, d = images(tmp_path / "in", ["fine", "boom", "stop", "fine too"])
    out = tmp_path / "out"
    common = ["--out", str(out), "-s", "restorer.plugin=picky", "-s", "segmenter.plugin=box"]
    assert main(["run", str(a), str(boom), *common]) == 1
    captured = capsys.readouterr()
    assert "wrote 1 reconstruction" in captured.out and "1 failed" in captured.out
    report = json.loads((out / "results.json").read_text())
    assert [Path(r["image"]).name for r in report["images"]] == ["a.png"]
    assert [f["image"] for f in report["failures"]] == [str(boom)] and "kaboom" in report["failures"][0]["error"]
    assert [Path(r["image"]).name for r in report["pending"]] == ["b.png"]  # encoded: a rerun retries its decode
    # Ctrl-C while decoding stop (a was done earlier): stop and d stay encoded, listed as pending, without PNG
    assert main(["run", str(a), str(stop), str(d), *common]) == 130
    report = json.loads((out / "results.json").read_text())
    assert [Path(r["image"]).name for r in report["images"]] == ["a.png"]
    assert [Path(r["image"]).name for r in report["pending"]] == ["b.png", "c.png", "d.png"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.sedic", "b.sedic", "c.sedic", "d.sedic", "results.json"]
    assert 8 * (out / "a.sedic").stat().st_size == report["images"][0]["file_bits"]
    assert 8 * (out / "d.sedic").stat().st_size == report["pending"][2]["file_bits"]
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("interrupted: 1 of 3 images done, 2 encoded awaiting decode, as ")


def test_a_release_failure_does_not_lose_the_encodings(registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = images(tmp_path / "in", ["one", "two"])
    out = tmp_path / "out"
    assert main(["run", str(a.parent), "--out", str(out), "-s", "describer.plugin=stuck", "-s", "segmenter.plugin=box"]) == 0
    captured = capsys.readouterr()
    assert "warning: could not release the encoder's models (RuntimeError: engine core died); decoding beside them" in captured.err
    assert "wrote 2 reconstructions" in captured.out and (out / "a.sedic").exists() and (out / "b.png").exists()
