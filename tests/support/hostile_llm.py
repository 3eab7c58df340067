"""A hostile OpenAI-compatible chat server on loopback for the classify job's tests: one mode per
misbehaviour, chosen by the first segment of the request path, so one server serves every mode:

    base_url = server.url("html")      # http://127.0.0.1:PORT/html/v1

Mode `live` answers as `server.live` says at the time of the request (a test switches it to make an
endpoint recover). Mode `echo` quotes the request's API key (its Authorization header) and every
string in `server.echo_also` back, in the next of ECHOES at each request: error bodies of each status
the client can see and 200s with the key in the answer and in its logprob tokens. `drip` sends the
headers and then the `ok` body one byte a second; `hang` accepts and never answers (both give up
after DRIP_S or when the client has gone). `no_logprobs` refuses a request that asks for logprobs
with a 400 saying so (as llama-cpp-python's server without logits_all did) and answers one that does
not. Every request is counted per mode in `server.requests`.
Bounded: request bodies over 1 MiB are refused, sockets time out after 10 s; `with HostileLLM() as
server:` stops it.
"""

from __future__ import annotations

import json
import threading
import time
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


_REFUSAL = {"error": {"message": "logprobs is not supported by this model", "type": "invalid_request_error"}}
REFUSE_LOGPROBS = (400, "application/json", json.dumps(_REFUSAL).encode())

Echo = Callable[[str], tuple[int, str, bytes]]
"""What mode `echo` answers, given the text to quote (the key and `echo_also`)."""


def _echo_error(status: int, kind: str) -> Echo:
    def answer(quoted: str) -> tuple[int, str, bytes]:
        error = {"message": f"Incorrect API key provided: Bearer {quoted}", "type": kind}
        return status, "application/json", json.dumps({"error": error}).encode()

    return answer


def _echo_answer(quoted: str) -> tuple[int, str, bytes]:
    """A good answer that goes on to quote the key; its tokens (8 characters each) cut the key into
    parts, and the last one has the key whole among its alternatives."""
    text = f"{ANSWER} key: {quoted}"
    toks = tokens(text, -0.01)
    toks[-1]["top_logprobs"].append({"token": quoted, "logprob": -9.0})
    return _json(completion(text, toks))


ECHOES: list[tuple[str, Echo]] = [
    ("200 answer", _echo_answer),
    ("200 error body", lambda quoted: _json({"error": {"message": f"bad key Bearer {quoted}"}})),
    ("200 html", lambda quoted: (200, "text/html", f"<html>Bearer {quoted}</html>".encode())),
    ("200 choices quoting", lambda quoted: _json({"choices": f"Bearer {quoted}"})),  # cut short when quoted
    ("400", _echo_error(400, "invalid_request_error")),
    ("401", _echo_error(401, "invalid_api_key")),
    ("403", _echo_error(403, "permission_denied")),
    ("404", _echo_error(404, "not_found")),
    ("422", _echo_error(422, "unprocessable")),
    ("429", _echo_error(429, "rate_limit_exceeded")),
    ("500", _echo_error(500, "server_error")),
    (
        "503",
        lambda quoted: (
            503,
            "application/json",
            json.dumps({"detail": f"no upstream for {quoted}"}).encode(),
        ),
    ),
]
DRIP_S = 60  # the longest a `drip` or `hang` request is kept open


class HostileLLM:
    """The server (module docstring); `url(mode)` is a base URL for the classify job."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.live = "ok"
        self.echo_also: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > 1024 * 1024:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                mode = self.path.strip("/").split("/")[0]
                server.requests[mode] += 1
                if mode == "no_logprobs":
                    self._send(*(REFUSE_LOGPROBS if b'"logprobs"' in body else _json(completion(ANSWER))))
                    return
                if mode == "hang":
                    self._stall(b"")
                    return
                if mode == "echo":
                    key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    _, echo = ECHOES[(server.requests[mode] - 1) % len(ECHOES)]
                    self._send(*echo(" ".join([key, *server.echo_also])))
                    return
                answer = MODES.get(server.live if mode == "live" else "ok" if mode == "drip" else mode)
                if answer is None:
                    self.send_error(404, f"no mode {mode!r}")
                    return
                status, ctype, body = answer()
                if mode == "drip":
                    self._send(status, ctype, b"", len(body))
                    self._stall(body)
                    return
                self._send(status, ctype, body)

            def _send(self, status: int, ctype: str, body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _stall(self, body: bytes) -> None:
                """`body` a byte a second (nothing at all when empty), for DRIP_S at most or until
                the client has gone."""
                for i in range(DRIP_S):
                    time.sleep(1)
                    try:
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        return

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
