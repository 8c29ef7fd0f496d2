"""The paper's three-stage question template (Fig. 3), its JSON schema and tolerant parsing.

Every LMM describer (``openai``, ``vllm``, ``transformers``) asks the same questions and parses
answers with the same code: (1) list at most J significant objects (names <= l_n words), (2)
describe each one (<= l_d words: shape, colour, texture, position), (3) caption the whole image
(<= l_all words: content, style, layout). Backends that support it constrain decoding to
:func:`description_schema`; answers are parsed tolerantly (code fences, prose around the JSON,
trailing commas, key variants), a failed parse gets one repair request, and the word limits are
enforced after parsing by :func:`sedic_kit.describe.apply_limits`.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from typing import Any, Literal

from PIL import Image
from pydantic import Field

from .describe import DescriptionOptions, apply_limits
from .errors import SedicError
from .payload import Payload, SemanticObject, SourceImage

REPAIR_ECHO_CHARS = 1500
"""How much of an unparseable answer is quoted back in the repair request."""


class LMMDescriptionOptions(DescriptionOptions):
    """Options shared by the LMM describers: the paper's limits plus decoding and failure policy."""

    max_new_tokens: int = Field(512, ge=16, le=8192, description="cap on generated tokens per request")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy (deterministic where the backend is)")
    repair: bool = Field(True, description="send one repair request when the answer does not parse")
    on_failure: Literal["empty", "error"] = Field(
        "empty", description="unparseable after repair: code no description (noted) or raise"
    )


class DescriptionParseError(ValueError):
    """An answer that holds no usable description."""


def description_schema() -> dict[str, Any]:
    """JSON schema of an answer (usable as OpenAI ``json_schema`` strict mode and guided decoding)."""
    obj = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "details": {"type": "string"}},
        "required": ["name", "details"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"objects": {"type": "array", "items": obj}, "caption": {"type": "string"}},
        "required": ["objects", "caption"],
        "additionalProperties": False,
    }


def build_prompt(options: DescriptionOptions) -> str:
    """The three-stage question for the limits in ``options``."""
    j, ln, ld, lall = options.max_objects, options.name_words, options.detail_words, options.caption_words
    if j == 0:
        stages = (
            "Stage 1 - objects: do not list any object; answer with an empty list.\n"
            f"Stage 2 - overall caption: describe the whole image in at most {lall} words, covering its "
            "content, the scene layout, lighting and photographic style.\n"
        )
    else:
        stages = (
            f"Stage 1 - object listing: list the {j} most significant objects in the image, at most {j}, "
            f"most important first. Name each with at most {ln} words (a concrete noun phrase a detector "
            "can find, e.g. 'red car'). List only objects that are clearly visible.\n"
            f"Stage 2 - object details: for each listed object, describe it in at most {ld} words: shape, "
            "colour, texture, material, pose and where it is in the image.\n"
            f"Stage 3 - overall caption: describe the whole image in at most {lall} words, covering its "
            "content, the scene layout, lighting and photographic style.\n"
        )
    return (
        "You are the text encoder of an image compression system: your words are all the decoder gets "
        "to restore details, so be concrete and visual.\n"
        + stages
        + 'Answer with one JSON object and nothing else, exactly in this form: {"objects": [{"name": "...", '
        '"details": "..."}], "caption": "..."}'
    )


def build_repair_prompt(options: DescriptionOptions, answer: str, problem: str) -> str:
    """A second request quoting the unusable answer and what was wrong with it."""
    quoted = answer.strip()[:REPAIR_ECHO_CHARS] or "(empty)"
    return (
        f"{build_prompt(options)}\n\nA previous answer could not be used ({problem}):\n{quoted}\n\n"
        "Answer again with only the JSON object, no other text."
    )


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _balanced(text: str, start: int) -> str:
    """The ``{...}`` block opening at ``start`` (to the end of ``text`` when never closed)."""
    depth, in_str, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:]


def _json_candidates(text: str, limit: int = 8) -> list[str]:
    """Substrings of ``text`` that may be the JSON object, most likely first."""
    cands = [m.group(1) for m in _FENCE.finditer(text)]
    starts = [m.start() for m in re.finditer(r"\{", text)][:limit]
    return cands + [_balanced(text, s) for s in starts]


def _loads(candidate: str) -> Any:
    text = candidate.strip()
    for attempt in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            continue
    raise DescriptionParseError("not valid JSON")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in mapping.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _objects(raw: Any) -> list[SemanticObject]:
    if isinstance(raw, dict):  # {"cat": "a grey cat ..."}
        raw = [{"name": k, "details": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append(SemanticObject(item.strip()))
        elif isinstance(item, dict):
            name = _text(_first(item, "name", "object", "object_name", "label", "title")).strip()
            details = _text(_first(item, "details", "description", "detail", "object_details", "attributes")).strip()
            if name:
                out.append(SemanticObject(name, details))
    return out


def _from_json(data: Any, width: int, height: int) -> Payload:
    if not isinstance(data, dict):
        raise DescriptionParseError("the JSON is not an object")
    caption = _text(_first(data, "caption", "overall_caption", "overall", "image_caption", "description", "summary")).strip()
    objects = _objects(_first(data, "objects", "object_list", "important_objects", "items"))
    if not caption and not objects:
        raise DescriptionParseError("the JSON has neither a caption nor objects")
    return Payload(width, height, caption, objects)


def parse_description(text: str, width: int, height: int) -> Payload:
    """A payload from a model's answer (the first usable JSON object in it).

    Raises :class:`DescriptionParseError` saying what was wrong when none is usable.
    """
    if not text or not text.strip():
        raise DescriptionParseError("empty answer")
    problem = "no JSON object found"
    for cand in _json_candidates(text):
        try:
            return _from_json(_loads(cand), width, height)
        except DescriptionParseError as exc:
            if problem == "no JSON object found" or str(exc) != "not valid JSON":
                problem = str(exc)
    raise DescriptionParseError(problem)


Ask = Callable[[str], str]
"""One request to a backend: the question (the image is attached by the backend) -> answer text."""


def describe_with(ask: Ask, source: SourceImage, options: LMMDescriptionOptions, who: str) -> Payload:
    """Ask, parse, repair once if needed, enforce the limits.

    When nothing usable comes back, returns an empty payload with a note on ``source`` (or raises
    with ``on_failure = "error"``): deterministic for deterministic backends.
    """
    width, height = source.size
    answer = ask(build_prompt(options))
    payload: Payload | None
    try:
        payload = parse_description(answer, width, height)
    except DescriptionParseError as first:
        problem = str(first)
        if not options.repair:
            payload = None
        else:
            answer = ask(build_repair_prompt(options, answer, problem))
            try:
                payload = parse_description(answer, width, height)
            except DescriptionParseError as second:
                problem, payload = str(second), None
    if payload is None:
        if options.on_failure == "error":
            raise SedicError(f"describer '{who}' gave no usable description ({problem})") from None
        source.notes.append(f"describer '{who}' gave no usable description ({problem}); coded without one")
        return Payload(width, height)
    return apply_limits(payload, options)


def fit_image(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` shrunk (never enlarged) so its longer side is at most ``max_side``."""
    w, h = image.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def image_data_uri(image: Image.Image, max_side: int, quality: int = 90) -> str:
    """A ``data:image/jpeg;base64,...`` URI of ``image`` resized to ``max_side``."""
    buf = io.BytesIO()
    fit_image(image.convert("RGB"), max_side).save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def chat_messages(question: str, data_uri: str, detail: str | None = None) -> list[dict[str, Any]]:
    """OpenAI chat-completions messages: one user turn with the image and the question."""
    image_url: dict[str, str] = {"url": data_uri}
    if detail:
        image_url["detail"] = detail
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": image_url},
                {"type": "text", "text": question},
            ],
        }
    ]
