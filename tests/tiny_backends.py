"""Random weights for the plugins whose models the ``tiny`` profile does not build.

``TINY`` maps a plugin name to a builder that writes seeded random weights under ``root`` and returns
the plugin options that load them through the plugin's own loading path (checkpoint file, config),
so the contract suite (tests/contracts.py) and the backend tests run those plugins end to end where
their package is installed. Builders import their package: call one only when the plugin's
``missing_requirements()`` is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from groundingdino_tiny import tiny_groundingdino_py


def tiny_sam(root: Path) -> dict[str, Any]:
    """A random segment-anything ViT-B checkpoint: the ``sam`` plugin builds only the official sizes."""
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    checkpoint = root / "sam_vit_b_random.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), checkpoint)
    return {"model_type": "vit_b", "checkpoint": str(checkpoint), "device": "cpu"}


def tiny_sam2(root: Path) -> dict[str, Any]:
    """A random SAM 2.1 Hiera-tiny checkpoint, saved as sam2 saves its own (``{"model": state_dict}``)."""
    import torch
    from sam2.build_sam import build_sam2
    from sedic_plugins.segmenters.sam import SAM2_VARIANTS

    torch.manual_seed(0)
    checkpoint = root / "sam2_random.pt"
    torch.save({"model": build_sam2(SAM2_VARIANTS["tiny"][1], None, device="cpu").state_dict()}, checkpoint)
    return {"variant": "tiny", "checkpoint": str(checkpoint), "device": "cpu"}


TINY: dict[str, Callable[[Path], dict[str, Any]]] = {
    "sam": tiny_sam,
    "sam2": tiny_sam2,
    "groundingdino-py": tiny_groundingdino_py,
}
