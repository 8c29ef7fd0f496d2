"""The shared three-stage template, tolerant parsing, repair and limits (no model needed)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from sedic_kit.errors import SedicError
from sedic_kit.imaging import load_image
from sedic_kit.prompting import (
    DescriptionParseError,
    LMMDescriptionOptions,
    build_prompt,
    build_repair_prompt,
    describe_with,
    description_schema,
    fit_image,
    parse_description,
)

GOOD = {"objects": [{"name": "red car", "details": "a small red hatchback parked left"}], "caption": "a quiet street"}


def test_prompt_carries_the_profile_limits():
    text = build_prompt(LMMDescriptionOptions(max_objects=2, name_words=2, detail_words=20, caption_words=30))
    for part in ("Stage 1", "Stage 2", "Stage 3", "at most 2", "at most 2 words", "at most 20 words", "at most 30 words"):
        assert part in text
    assert "Stage 3" not in build_prompt(LMMDescriptionOptions(max_objects=0))
    repair = build_repair_prompt(LMMDescriptionOptions(), "x" * 5000, "not valid JSON")
    assert "not valid JSON" in repair and repair.count("x") < 2000


def test_schema_is_strict_mode_compatible():
    schema = description_schema()
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])
    item = schema["properties"]["objects"]["items"]
    assert item["additionalProperties"] is False and set(item["required"]) == set(item["properties"])


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps(GOOD),
        "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
        "Here is the description: " + json.dumps(GOOD) + " Hope it helps {not json}",
        '{"objects": [{"name": "red car", "details": "a small red hatchback parked left",},], "caption": "a quiet street",}',
        '{"Objects": [{"object": "red car", "description": "a small red hatchback parked left"}], "Overall caption": "a quiet street"}',
        '{"objects": {"red car": "a small red hatchback parked left"}, "caption": "a quiet street"}',
    ],
)
def test_tolerant_parsing(answer):
    payload = parse_description(answer, 64, 48)
    assert (payload.width, payload.height, payload.caption) == (64, 48, "a quiet street")
    assert [(o.name, o.details) for o in payload.objects] == [("red car", "a small red hatchback parked left")]


def test_first_usable_object_wins():
    answer = 'Schema example: {"type": "object"}. Answer: ' + json.dumps(GOOD)
    assert parse_description(answer, 8, 8).caption == "a quiet street"


def test_object_names_only():
    payload = parse_description('{"objects": ["dog", "ball"], "caption": ""}', 8, 8)
    assert [o.name for o in payload.objects] == ["dog", "ball"]


@pytest.mark.parametrize("answer", ["", "   ", "no json here", "[1, 2]", '{"foo": 1}', '{"objects": [', "}{"])
def test_unusable_answers(answer):
    with pytest.raises(DescriptionParseError):
        parse_description(answer, 8, 8)


class Script:
    """A backend that answers from a list and records the questions."""

    def __init__(self, *answers: str) -> None:
        self.answers, self.questions = list(answers), []

    def __call__(self, question: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0)


@pytest.fixture
def source():
    return load_image(Image.new("RGB", (32, 16)))


def test_repair_once_then_limits(source):
    long = {"objects": [{"name": "a b c d e", "details": "w " * 50}] * 4, "caption": "c " * 80}
    ask = Script("garbage", json.dumps(long))
    payload = describe_with(ask, source, LMMDescriptionOptions(), "x")
    assert len(ask.questions) == 2 and "garbage" in ask.questions[1]
    assert len(payload.objects) == 3 and payload.objects[0].name == "a b c"
    assert len(payload.objects[0].details.split()) == 30 and len(payload.caption.split()) == 50


def test_failure_policy(source):
    payload = describe_with(Script("a", "b"), source, LMMDescriptionOptions(), "x")
    assert payload.caption == "" and payload.objects == [] and "describer 'x'" in source.notes[-1]
    ask = Script("a")
    describe_with(ask, source, LMMDescriptionOptions(repair=False), "x")
    assert len(ask.questions) == 1
    with pytest.raises(SedicError, match="no usable description"):
        describe_with(Script("a", "b"), source, LMMDescriptionOptions(on_failure="error"), "x")


def test_fit_image_never_enlarges():
    assert fit_image(Image.new("RGB", (1000, 500)), 336).size == (336, 168)
    assert fit_image(Image.new("RGB", (100, 50)), 336).size == (100, 50)
