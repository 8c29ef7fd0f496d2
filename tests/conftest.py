"""Shared fixtures: small synthetic images with sidecar descriptions, isolated caches."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "images"

CONTRACT_ENV = "SEDIC_CONTRACT_PLUGINS"
"""Installed third-party distributions (comma-separated) whose plugins the suite loads too, so that
``tests/test_contracts.py`` checks them: ``SEDIC_CONTRACT_PLUGINS=my-dist pytest tests/test_contracts.py``."""
CONTRACT_DISTRIBUTIONS = [n.strip() for n in os.environ.get(CONTRACT_ENV, "").split(",") if n.strip()]

# Tests see sedic-kit's own plugins only, whatever else is installed (the example plugin, say),
# plus the distributions named in SEDIC_CONTRACT_PLUGINS; tests of third-party loading name the
# distributions they load. Subprocesses inherit this.
os.environ["SEDIC_LOAD_PLUGINS"] = ",".join(CONTRACT_DISTRIBUTIONS)


def pytest_configure(config: pytest.Config) -> None:
    """A distribution named in SEDIC_CONTRACT_PLUGINS that is not installed, has no plugins or
    fails to load stops the run before the first test, with one line per problem."""
    if not CONTRACT_DISTRIBUTIONS:
        return
    from sedic_kit.plugins import ENTRY_POINT_GROUP, Registry

    problems = []
    for dist in CONTRACT_DISTRIBUTIONS:
        try:
            entry_points = [ep for ep in metadata.distribution(dist).entry_points if ep.group == ENTRY_POINT_GROUP]
        except metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed in this environment ({sys.executable})")
            continue
        if not entry_points:
            problems.append(f"{dist} has no [project.entry-points.{ENTRY_POINT_GROUP}]: no plugins to check")
    if not problems:
        registry = Registry()
        registry.load_entry_points()
        named = {d.lower() for d in CONTRACT_DISTRIBUTIONS}
        for source in registry.sources.values():
            if (source.distribution or "").lower() in named:
                problems += [f"{source.distribution}: plugin module {source.name} failed: {e}" for e in source.errors]
    if problems:
        raise pytest.UsageError("\n".join(f"{CONTRACT_ENV}: {p}" for p in problems))


def importable(*modules: str) -> bool:
    """Whether every module imports here (a torchvision built for another torch does not)."""
    try:
        for m in modules:
            __import__(m)
    except Exception:
        return False
    return True


def synthetic_image(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A smooth colourful image with a bright disc: compressible but not trivial."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.45) ** 2 < (min(width, height) * 0.25) ** 2
    base[disc] = [240, 200, 40]
    base += rng.normal(0, 6, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tests run tiny models, whose ops are too small for threads to pay off: on 2 shared cores
    OpenMP synchronisation makes them 20-40x slower. One thread also makes timings stable."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDIC_CACHE", str(tmp_path_factory.getbasetemp() / "sedic-cache"))
    monkeypatch.setenv("SEDIC_PROFILE_PATH", "")
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))


@pytest.fixture
def small_image(tmp_path: Path) -> Path:
    """A 96x64 PNG with a sidecar JSON describing one object (the disc) and a caption."""
    path = tmp_path / "small.png"
    synthetic_image().save(path)
    sidecar = {
        "caption": "A yellow disc on a smooth gradient, flat studio light, 3 colours.",
        "objects": [{"name": "yellow disc", "details": "Bright round yellow disc, flat colour.", "box": [40, 12, 76, 46]}],
    }
    (tmp_path / "small.json").write_text(json.dumps(sidecar))
    return path
