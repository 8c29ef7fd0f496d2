"""``openai`` describer: GPT-4V-class models, or any OpenAI-compatible server (vllm serve, Ollama).

The API key is read from the environment variable named by ``api_key_env`` at request time and is
never stored in options, files, reports, notes or error messages (a server message that quotes
any part of it is withheld). It is sent only to the official endpoint, or to a ``base_url`` that
the profile pairs with an explicit ``api_key_env``: a custom server (``base_url`` alone, or
``$OPENAI_BASE_URL``) gets a placeholder, so a key meant for OpenAI never leaks to it. The official
endpoint refuses to start without a key.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from sedic_kit.errors import BackendError, ModelNotFoundError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.prompting import LMMDescriptionOptions, chat_messages, describe_with, description_schema, image_data_uri
from sedic_kit.roles import Describer

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "sedic-kit-no-key"
"""Sent to servers on a custom ``base_url`` when the key variable is unset (they ignore it)."""


class OpenAIOptions(LMMDescriptionOptions):
    model: str = "gpt-4o"
    base_url: str | None = Field(None, description="None: $OPENAI_BASE_URL, else the official API")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key")
    max_image_side: int = Field(768, ge=64, le=4096, description="image sent resized to this longer side")
    detail: Literal["low", "high", "auto"] = "high"
    response_format: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="structured output mode the server supports"
    )
    timeout: float = Field(60.0, gt=0, description="seconds per request attempt")
    max_retries: int = Field(2, ge=0, le=10, description="retries on 429/5xx/timeouts (SDK backoff)")
    seed: int | None = 0


class OpenAIDescriber(Describer[OpenAIOptions]):
    """Caption and objects from a chat-completions model (three-stage template, JSON answer)."""

    name = "openai"
    requires = ("openai",)
    extra = "openai"

    def __init__(self, options: OpenAIOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._client: Any = None

    @property
    def base_url(self) -> str:
        return (self.options.base_url or os.environ.get("OPENAI_BASE_URL") or OFFICIAL_BASE_URL).rstrip("/")

    @property
    def sends_key(self) -> bool:
        """Whether this endpoint gets the key: the official one, or a ``base_url`` set together with ``api_key_env``."""
        return self.base_url == OFFICIAL_BASE_URL or {"base_url", "api_key_env"} <= self.options.model_fields_set

    def client(self) -> Any:
        """The SDK client, built on first use (the key is read from the environment here)."""
        if self._client is None:
            import openai

            env = self.options.api_key_env
            key = os.environ.get(env, "") if self.sends_key else ""
            if not key:
                if self.base_url == OFFICIAL_BASE_URL:
                    raise ModelNotFoundError(
                        f"describer 'openai': no API key: set the environment variable {env} "
                        f"(or describer.base_url to an OpenAI-compatible server)"
                    )
                key = NO_KEY
            self._client = openai.OpenAI(
                api_key=key, base_url=self.base_url, timeout=self.options.timeout, max_retries=self.options.max_retries
            )
        return self._client

    def describe(self, source: SourceImage) -> Payload:
        uri = image_data_uri(source.image, self.options.max_image_side)
        return describe_with(lambda q: self.ask(q, uri), source, self.options, self.name)

    def response_format(self) -> dict[str, Any] | None:
        mode = self.options.response_format
        if mode == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": "sedic_description", "schema": description_schema(), "strict": True},
            }
        return {"type": "json_object"} if mode == "json_object" else None

    def ask(self, question: str, data_uri: str) -> str:
        """One chat completion; SDK errors become one-line :class:`BackendError` (no key, no body)."""
        import openai

        o = self.options
        kwargs: dict[str, Any] = {
            "model": o.model,
            "messages": chat_messages(question, data_uri, o.detail),
            "max_tokens": o.max_new_tokens,
            "temperature": o.temperature,
        }
        if o.seed is not None:
            kwargs["seed"] = o.seed
        fmt = self.response_format()
        if fmt is not None:
            kwargs["response_format"] = fmt
        where = f"describer 'openai' ({o.model} at {self.base_url})"
        tries = f"{o.max_retries + 1} attempt{'s' if o.max_retries else ''}"
        try:
            response = self.client().chat.completions.create(**kwargs)
        except openai.AuthenticationError as exc:
            hint = (
                f"check ${o.api_key_env}"
                if self.sends_key
                else "this server gets no key unless the profile sets describer.api_key_env together with describer.base_url"
            )
            raise BackendError(f"{where}: authentication failed (HTTP {exc.status_code}); {hint}") from None
        except openai.APITimeoutError:
            raise BackendError(f"{where}: no answer within {o.timeout:g} s ({tries})") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise BackendError(f"{where}: cannot connect ({type(cause).__name__}) after {tries}") from None
        except openai.APIStatusError as exc:
            message = _server_message(exc, os.environ.get(o.api_key_env, ""))
            raise BackendError(f"{where}: HTTP {exc.status_code} {message} after {tries}") from None
        except openai.OpenAIError as exc:  # anything else from the SDK: its type only (its text may quote the answer)
            raise BackendError(f"{where}: {type(exc).__name__} after {tries}") from None
        choices = getattr(response, "choices", None) or []
        if not choices:
            return ""
        return choices[0].message.content or ""


KEY_FRAGMENT = 6
"""A server message containing this many consecutive characters of the key is withheld."""


def _server_message(exc: Any, key: str) -> str:
    """The server's own error message, one line, short; withheld if it quotes any part of ``key``."""
    body = getattr(exc, "body", None)
    msg = body.get("message") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        msg = body["error"].get("message")
    text = " ".join(str(msg or "").split())
    if _quotes(text, key):
        return "(server message withheld: it quotes the API key)"
    text = text[:200]
    return f"({text})" if text else ""


def _quotes(text: str, key: str) -> bool:
    """Whether ``text`` contains ``key`` or any ``KEY_FRAGMENT`` consecutive characters of it."""
    if not key:
        return False
    n = min(KEY_FRAGMENT, len(key))
    return any(key[i : i + n] in text for i in range(len(key) - n + 1))


@hookimpl
def register_describers(register: Register) -> None:
    register(OpenAIDescriber)
