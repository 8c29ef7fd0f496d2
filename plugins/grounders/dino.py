"""Hallucination filter shared by the Grounding DINO grounders.

Each object name is queried on its own (``"red car."``), so a detection belongs to exactly one
object. A query detects its object when some box scores above ``box_threshold`` (max over the
query's text tokens, as in the official code) and the object's own name tokens score above
``text_threshold`` (the official phrase would not be empty). Objects without a detection are
dropped as hallucinations (paper III-A); the others keep their best box and its score.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import Field

from sedic_kit.payload import Box, Payload, SourceImage
from sedic_kit.roles import Grounder, Options


class GroundingOptions(Options):
    box_threshold: float = Field(0.3, ge=0, le=1, description="min box score (official: 0.3)")
    text_threshold: float = Field(0.25, ge=0, le=1, description="min score of the name's tokens (official: 0.25)")


@dataclass(frozen=True)
class Detection:
    """One candidate box for one object: pixel ``(x0, y0, x1, y1)`` floats and its scores."""

    box: tuple[float, float, float, float]
    score: float
    name_score: float


def query_text(name: str) -> str:
    """Grounding DINO's caption format: lower case, ending with a period."""
    text = " ".join(name.lower().split()).rstrip(".")
    return f"{text}."


def cxcywh_to_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """A normalised centre/size box ``(cx, cy, w, h)`` in pixels ``(x0, y0, x1, y1)``."""
    cx, cy, w, h = box
    return ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def name_positions(tokenizer: Any, input_ids: Sequence[int]) -> list[int]:
    """Positions of the name's own tokens in a tokenized query: not ``[CLS]``, ``[SEP]``, padding (the
    tokenizer's special tokens other than ``[UNK]``) nor the closing period."""
    special = (set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}) | {tokenizer.convert_tokens_to_ids(".")}
    return [p for p, token in enumerate(input_ids) if int(token) not in special]


def query_detections(probs: Any, boxes: Any, names: Sequence[int], width: int, height: int) -> list[Detection]:
    """One query's candidates from its per-token scores ``probs`` (queries x text tokens, sigmoid) and
    normalised ``cxcywh`` ``boxes``: the score is the max over all text tokens (as the official code),
    the name score the max over the name's token positions ``names`` (0 without any)."""
    score = probs.max(dim=-1).values
    name_score = probs[:, list(names)].max(dim=-1).values if names else score * 0
    return [
        Detection(cxcywh_to_box(box, width, height), s, n)
        for box, s, n in zip(boxes.tolist(), score.tolist(), name_score.tolist())
    ]


def pixel_box(box: tuple[float, float, float, float], width: int, height: int) -> Box:
    """Round outward and clip to the image, keeping at least one pixel."""
    import math

    x0 = min(max(0, math.floor(box[0])), width - 1)
    y0 = min(max(0, math.floor(box[1])), height - 1)
    x1 = max(min(width, math.ceil(box[2])), x0 + 1)
    y1 = max(min(height, math.ceil(box[3])), y0 + 1)
    return (x0, y0, x1, y1)


def keep_found(payload: Payload, detections: list[list[Detection]], options: GroundingOptions) -> Payload:
    """Keep objects with a detection above both thresholds, each with its best box."""
    if len(detections) != len(payload.objects):
        raise ValueError(f"{len(detections)} detection lists for {len(payload.objects)} objects")
    kept = []
    for obj, found in zip(payload.objects, detections):
        valid = [d for d in found if d.score > options.box_threshold and d.name_score > options.text_threshold]
        if valid:
            best = max(valid, key=lambda d: d.score)
            kept.append(replace(obj, box=pixel_box(best.box, payload.width, payload.height), score=best.score))
    return payload.with_objects(kept)


GroundingOptionsT = TypeVar("GroundingOptionsT", bound=GroundingOptions)


class DinoGrounder(Grounder[GroundingOptionsT]):
    """A Grounding DINO grounder: ``detect`` each name's candidate boxes, then :func:`keep_found`."""

    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        if not payload.objects:
            return payload
        return keep_found(payload, self.detect(source, [o.name for o in payload.objects]), self.options)

    @abstractmethod
    def detect(self, source: SourceImage, names: list[str]) -> list[list[Detection]]:
        """Candidate boxes per name, one list per name in order."""
