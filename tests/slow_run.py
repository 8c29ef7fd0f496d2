"""``python tests/slow_run.py ARGS``: the ``sedic-kit`` command line with two slow test plugins,
describer ``slow`` (the sidecar's answer) and restorer ``slow`` (upsampling), each taking
``SLOW_SECONDS`` (default 0.4) per image, so a test can interrupt a real run in either phase."""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

from PIL import Image

from sedic_kit import Payload, SourceImage, hookimpl
from sedic_kit import plugins as plugins_module
from sedic_kit.cli import main
from sedic_kit.plugins import Registry
from sedic_plugins.describers.sidecar import SidecarDescriber
from sedic_plugins.restorers.upsample import UpsampleRestorer

PAUSE = float(os.environ.get("SLOW_SECONDS", "0.4"))


class SlowDescriber(SidecarDescriber):
    name = "slow"

    def describe(self, source: SourceImage) -> Payload:
        time.sleep(PAUSE)
        return super().describe(source)


class SlowRestorer(UpsampleRestorer):
    name = "slow"

    def restore(self, reference: Image.Image, payload: Payload) -> Image.Image:
        time.sleep(PAUSE)
        return super().restore(reference, payload)


def slow_registry() -> Registry:
    """The installed plugins and the two slow ones."""
    registry = Registry()
    registry.load_entry_points()
    hooks = SimpleNamespace(
        register_describers=hookimpl(lambda register: register(SlowDescriber)),
        register_restorers=hookimpl(lambda register: register(SlowRestorer)),
    )
    registry.add_module(hooks, "slow")
    return registry


if __name__ == "__main__":
    plugins_module._registry = slow_registry()
    sys.exit(main(sys.argv[1:]))
