"""Box-prompted segmentation post-processing shared by the SAM segmenters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sedic_kit.payload import Box, Payload

from ..shared.boxes import clamp_box
from .box import box_mask


def prompt_boxes(payload: Payload) -> list[Box]:
    """Each object's box clipped to the image (the whole frame when it has none)."""
    return [clamp_box(o.box, payload.width, payload.height) for o in payload.objects]


def best_of_multimask(masks: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, float]:
    """The candidate mask with the highest predicted IoU: ``masks`` (K, H, W), ``scores`` (K,)."""
    masks, scores = np.asarray(masks), np.asarray(scores, dtype=np.float64).reshape(-1)
    if masks.ndim != 3 or masks.shape[0] != scores.shape[0] or masks.shape[0] == 0:
        raise ValueError(f"expected K masks with K scores, got masks {masks.shape} and scores {scores.shape}")
    k = int(np.argmax(scores))
    return masks[k].astype(bool), float(scores[k])


def with_masks(payload: Payload, candidates: list[tuple[np.ndarray, np.ndarray]]) -> Payload:
    """Set each object's mask to its best candidate; an empty or missized mask falls back to the box."""
    h, w = payload.height, payload.width
    objects = []
    for obj, box, (masks, scores) in zip(payload.objects, prompt_boxes(payload), candidates, strict=True):
        mask, _ = best_of_multimask(masks, scores)
        if mask.shape != (h, w) or not mask.any():
            mask = box_mask(box, w, h)
        objects.append(replace(obj, box=box, mask=mask))
    return payload.with_objects(objects)
