"""A hostile OpenAI-compatible chat server on loopback for the classify job's tests: one mode per
misbehaviour, chosen by the first segment of the request path, so one server serves every mode:

    base_url = server.url("html")      # http://127.0.0.1:PORT/html/v1

Mode `live` answers as `server.live` says at the time of the request (a test switches it to make an
endpoint recover). Every request is counted per mode in `server.requests`. Bounded: request bodies
over 1 MiB are refused, sockets time out after 10 s; `with HostileLLM() as server:` stops it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = '{"predictions": [{"category": "World", "confidence": 0.9}]}'
HUGE_BYTES = 1024 * 1024  # the answer of mode `huge`: far above the job's 64 KiB cap


def completion(content: Any, logprobs: Any = None) -> dict[str, Any]:
    """A chat completion body with `content` and, when given, `logprobs.content`."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": content}}  # fmt: skip
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "hostile",
            "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}  # fmt: skip


def tokens(text: str, logprob: Any) -> list[dict[str, Any]]:
    """`text` as one token per 8 characters, each with `logprob` and itself as its only alternative."""
    pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
    return [
        {"token": p, "logprob": logprob, "top_logprobs": [{"token": p, "logprob": logprob}]} for p in pieces
    ]


def _json(body: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(body).encode()


MODES: dict[str, Callable[[], tuple[int, str, bytes]]] = {
    "ok": lambda: _json(completion(ANSWER, tokens(ANSWER, -0.01))),
    "invalid_json": lambda: (200, "application/json", b'{"choices": [{"message": '),
    "choices_empty": lambda: _json({"choices": []}),
    "choices_null": lambda: _json({"choices": None}),
    "empty_object": lambda: _json({}),
    "html": lambda: (200, "text/html", b"<html><body><h1>Welcome to nginx!</h1></body></html>"),
    "non_utf8": lambda: (200, "application/json",
                         b'{"choices": [{"message": {"role": "assistant", "content": "\xff\xfe\xfa"}}]}'),
    "logprob_huge": lambda: _json(completion(ANSWER, tokens(ANSWER, 1000))),
    "logprob_string": lambda: _json(completion(ANSWER, tokens(ANSWER, "high"))),
    "logprob_infinity": lambda: _json(completion(ANSWER, tokens(ANSWER, float("inf")))),  # `Infinity`
    "error_in_200": lambda: _json({"error": {"message": "model overloaded", "type": "server_error"}}),
    "content_null": lambda: _json(completion(None)),
    "content_empty": lambda: _json(completion("")),
    "huge": lambda: _json(completion(ANSWER + " " * HUGE_BYTES)),
    "lone_surrogate": lambda: _json(completion(ANSWER + " \ud800")),  # JSON allows it; UTF-8 does not
}  # fmt: skip


class HostileLLM:
    """The server (module docstring); `url(mode)` is a base URL for the classify job."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.live = "ok"
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > 1024 * 1024:
                    self.send_error(413)
                    return
                self.rfile.read(length)
                mode = self.path.strip("/").split("/")[0]
                server.requests[mode] += 1
                answer = MODES.get(server.live if mode == "live" else mode)
                if answer is None:
                    self.send_error(404, f"no mode {mode!r}")
                    return
                status, ctype, body = answer()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def __enter__(self) -> HostileLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)
