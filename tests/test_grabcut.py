"""GrabCut segmenter at reduced resolution."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sedic_kit.masks import to_grid
from sedic_kit.payload import Payload, SemanticObject, SourceImage
from sedic_plugins.segmenters.grabcut import GrabCutSegmenter


def scene(width: int, height: int) -> SourceImage:
    """A red disc on a textured blue-grey background."""
    rng = np.random.default_rng(0)
    pixels = np.stack([np.full((height, width), 90), np.full((height, width), 110), np.full((height, width), 150)], -1).astype(float)
    pixels += rng.normal(0, 6, pixels.shape)
    y, x = np.mgrid[0:height, 0:width]
    disc = (x - width * 0.4) ** 2 + (y - height * 0.5) ** 2 <= (height * 0.25) ** 2
    pixels[disc] = (200, 40, 30)
    return SourceImage(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), None, {}, [])


def test_work_size_follows_scale_and_max_side() -> None:
    assert GrabCutSegmenter().work_size(768, 512) == (192, 128)  # 2x2 pixels per cell of the 1/8 grid
    assert GrabCutSegmenter(scale=1).work_size(768, 512) == (768, 512)
    assert GrabCutSegmenter(scale=1, max_side=384).work_size(768, 512) == (384, 256)
    assert GrabCutSegmenter().work_size(8000, 4000) == (1024, 512)  # max_side caps very large images
    assert GrabCutSegmenter().work_size(3, 2) == (1, 1)


def test_reduced_resolution_finds_the_object_on_the_mask_grid() -> None:
    source = scene(256, 160)
    disc = np.asarray(source.image)[..., 0] > 150
    payload = Payload(256, 160, "", [SemanticObject("disc", "", box=(50, 30, 160, 130))])
    grids = {}
    for scale in (1, 4):
        mask = GrabCutSegmenter(scale=scale).segment(source, payload).objects[0].mask
        assert mask.shape == (160, 256) and mask.dtype == bool
        grids[scale] = to_grid(mask, 256, 160, 8)
    truth = to_grid(disc, 256, 160, 8)
    for grid in grids.values():
        assert (grid & truth).sum() / (grid | truth).sum() > 0.8
