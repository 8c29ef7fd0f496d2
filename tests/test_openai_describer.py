"""The ``openai`` describer against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("openai", reason="the openai describer needs the openai SDK (the [openai] extra)")

from chat_server import ChatServer
from sedic_plugins.describers.openai_compatible import OpenAIDescriber

from sedic_kit import Codec
from sedic_kit.errors import BackendError, ModelNotFoundError, SedicError
from sedic_kit.imaging import load_image
from sedic_kit.profiles import load_profile
from sedic_kit.roles import Role

KEY = "sk-test-5f1c0ffee-never-stored"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "kodim23.png"
GOOD = json.dumps(
    {
        "objects": [{"name": "red parrot", "details": "a scarlet macaw with blue wings on the left"}],
        "caption": "two parrots perched side by side against a green background",
    }
)


@pytest.fixture
def source():
    return load_image(Image.new("RGB", (1200, 800), (90, 140, 60)))


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def describer(server: ChatServer, **kw) -> OpenAIDescriber:
    return OpenAIDescriber(**{"base_url": server.base_url, "model": "llava-test", "timeout": 5, "max_retries": 2, **kw})


def test_good_answer_and_request_shape(source):
    with ChatServer([("ok", GOOD)]) as server:
        payload = describer(server, api_key_env="OPENAI_API_KEY").describe(source)
    assert payload.caption.startswith("two parrots")
    assert [(o.name, o.details) for o in payload.objects] == [("red parrot", "a scarlet macaw with blue wings on the left")]
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    body = req["body"]
    assert body["model"] == "llava-test" and body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["objects", "caption"]
    content = body["messages"][0]["content"]
    url = content[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (768, 512)  # resized to max_image_side
    assert "at most 3" in content[1]["text"] and "at most 30 words" in content[1]["text"]


def test_malformed_json_gets_one_repair(source):
    with ChatServer([("ok", "Sure! {objects: [oops"), ("ok", "```json\n" + GOOD + "\n```")]) as server:
        payload = describer(server).describe(source)
    assert len(server.requests) == 2
    assert "could not be used" in server.requests[1]["body"]["messages"][0]["content"][1]["text"]
    assert payload.objects[0].name == "red parrot"


def test_unrepairable_answer_gives_empty_payload_or_error(source):
    with ChatServer([("ok", "I cannot help with that.")]) as server:
        payload = describer(server).describe(source)
        assert (payload.caption, payload.objects) == ("", [])
        assert any("no usable description" in n for n in source.notes)
        assert len(server.requests) == 2
        with pytest.raises(SedicError, match="no usable description"):
            describer(server, on_failure="error").describe(source)


def test_over_long_answer_is_cut_to_the_limits(source):
    long = {
        "objects": [{"name": f"very long object name {i}", "details": "word " * 80} for i in range(5)],
        "caption": "caption " * 200,
    }
    with ChatServer([("ok", json.dumps(long))]) as server:
        payload = describer(server, max_objects=2, detail_words=10, caption_words=20).describe(source)
    assert len(payload.objects) == 2
    assert all(len(o.name.split()) <= 3 and len(o.details.split()) == 10 for o in payload.objects)
    assert len(payload.caption.split()) == 20


def test_429_and_500_are_retried(source):
    with ChatServer([(429, {"error": {"message": "slow down"}}), (500, {"error": {"message": "oops"}}), ("ok", GOOD)]) as server:
        start = time.monotonic()
        payload = describer(server).describe(source)
    assert payload.objects and len(server.requests) == 3
    assert time.monotonic() - start < 10


def test_persistent_500_ends_in_one_line_error(source):
    with ChatServer([(500, {"error": {"message": "model crashed"}})]) as server, pytest.raises(BackendError) as info:
        describer(server, max_retries=1).describe(source)
    assert len(server.requests) == 2
    msg = str(info.value)
    assert "HTTP 500" in msg and "model crashed" in msg and "\n" not in msg


def test_timeout_is_bounded(source):
    with ChatServer([("sleep", 3.0)]) as server:
        start = time.monotonic()
        with pytest.raises(BackendError, match="no answer within 0.3 s"):
            OpenAIDescriber(base_url=server.base_url, timeout=0.3, max_retries=1).describe(source)
        assert time.monotonic() - start < 5


def test_connection_refused(source):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(BackendError, match="cannot connect"):
        OpenAIDescriber(base_url=f"http://127.0.0.1:{port}/v1", timeout=2, max_retries=1).describe(source)
    assert time.monotonic() - start < 10


def test_auth_failure_never_echoes_the_key(source):
    body = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
    with ChatServer([(401, body)]) as server, pytest.raises(BackendError) as info:
        describer(server).describe(source)
    assert "authentication failed" in str(info.value) and KEY not in str(info.value)


def test_local_server_needs_no_key(source, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with ChatServer([("ok", GOOD)]) as server:
        assert describer(server).describe(source).objects


def test_gpt4v_profile_without_key_names_the_variable(source, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    plugin = load_profile("gpt4v").build_role(Role.describer)
    with pytest.raises(ModelNotFoundError) as info:
        plugin.describe(source)
    assert "OPENAI_API_KEY" in str(info.value) and "\n" not in str(info.value)


def test_codec_end_to_end_key_never_written(tmp_path):
    with ChatServer([("ok", GOOD)]) as server:
        codec = Codec.from_profile(
            "lite", describer={"plugin": "openai", "base_url": server.base_url, "model": "llava-test", "max_retries": 0}
        )
        result = codec.encode(EXAMPLE)
    path = result.save(tmp_path / "x.sedic")
    decoded = codec.decode_detailed(path)
    assert decoded.payload.caption == result.payload.caption and decoded.payload.objects[0].name == "red parrot"
    assert KEY.encode() not in path.read_bytes()
    assert KEY not in json.dumps(result.summary()) and KEY not in json.dumps(codec.profile.to_dict())


def test_key_goes_only_to_a_base_url_paired_with_api_key_env(source, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "local-secret-123")
    with ChatServer([("ok", GOOD)]) as server:
        describer(server).describe(source)  # base_url alone: the OpenAI key stays home
        describer(server, api_key_env="MY_SERVER_KEY").describe(source)  # paired in the profile: sent
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        OpenAIDescriber(model="llava-test", max_retries=0).describe(source)  # $OPENAI_BASE_URL alone: not sent
    sent = [r["headers"]["authorization"] for r in server.requests]
    assert sent == ["Bearer sedic-kit-no-key", "Bearer local-secret-123", "Bearer sedic-kit-no-key"]
    assert all(KEY not in json.dumps(r) for r in server.requests)


def test_official_endpoint_gets_the_key_custom_ones_only_when_paired(monkeypatch):
    assert OpenAIDescriber().sends_key and OpenAIDescriber(api_key_env="OTHER").sends_key
    assert OpenAIDescriber(base_url="https://api.openai.com/v1/").sends_key
    assert not OpenAIDescriber(base_url="http://127.0.0.1:9/v1").sends_key
    assert OpenAIDescriber(base_url="http://127.0.0.1:9/v1", api_key_env="OPENAI_API_KEY").sends_key
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert not OpenAIDescriber().sends_key


@pytest.mark.parametrize("status", [401, 500])
def test_a_server_echoing_the_key_never_gets_it_into_the_message(source, status):
    with ChatServer([("echo", status)]) as server, pytest.raises(BackendError) as info:
        describer(server, api_key_env="OPENAI_API_KEY", max_retries=0).describe(source)
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"  # paired: it was sent ...
    msg = str(info.value)
    assert f"HTTP {status}" in msg and "\n" not in msg
    assert not any(KEY[i : i + 6] in msg for i in range(len(KEY) - 5))  # ... but no 6 characters of it come back
    if status == 500:
        assert "withheld" in msg


def test_auth_failure_on_an_unpaired_server_says_how_to_send_a_key(source):
    with ChatServer([(401, {"error": {"message": "no"}})]) as server, pytest.raises(BackendError) as info:
        describer(server, max_retries=0).describe(source)
    assert "describer.api_key_env together with describer.base_url" in str(info.value)
