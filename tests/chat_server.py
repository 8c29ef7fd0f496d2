"""A real chat-completions HTTP server on 127.0.0.1 for the ``openai`` describer tests.

Each request pops the next scripted reply: ``("ok", text)``, ``(status, body_dict)``,
``("sleep", seconds)`` or ``("echo", status)`` (an error whose message quotes the request's
``Authorization`` header, as a careless proxy would); the last reply repeats. Requests (headers and JSON bodies) are recorded.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer

Reply = tuple[Any, Any]


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class ChatServer(LoopbackServer):
    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                kind, value = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "ok", "{}"
                elif kind == "echo":
                    kind, value = value, {"error": {"message": f"bad credentials: {self.headers.get('authorization')}"}}
                status, payload = (200, completion(value)) if kind == "ok" else (kind, value)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after-ms", "10")
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"
