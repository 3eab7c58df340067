"""A loopback W&B server real enough for wandb's own client (`wandb sync`, `wandb.init` online): it
answers the GraphQL operations, the file stream and the file uploads wandb-core sends, records every
request (one JSON line each, with its size in bytes) and keeps what W&B keeps of each run:

- history, system-metric events, console lines and summary are files of lines; a file-stream chunk
  `{"offset": N, "content": [...]}` puts its lines at N, N+1, ... (replacing lines already there,
  keeping those after), as W&B does, so a sync that starts again at offset 0 overwrites history;
- config and tags from UpsertBucket (config merged key by key, as W&B merges it);
- `RunResumeStatus` answers, once the run exists, with its history/events/log line counts, the
  history and events tails, its config, summary and tags (what wandb-core resumes from).

    python tests/support/wandb_server.py --log REQUESTS.jsonl [--status 403 | --hang]

Prints its port on the first line of stdout. `--status` answers every request with that HTTP
status instead (how a test makes the sync fail); `--hang` accepts connections and never answers.
`GET /_state` returns what the server holds: `{"runs": {W&B run id: {"history": [row, ...],
"summary": {...}, "config": {...}, "tags": [...], "project": ..., "exitcode": ..., "arrived":
[when each history line came, time.time()]}}}`.
Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILES = {
    "wandb-history.jsonl": "history",
    "wandb-events.jsonl": "events",
    "output.log": "logs",
    "wandb-summary.json": "summary",
}


@dataclass
class RunData:
    project: str = ""
    entity: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    files: dict[str, list[str | None]] = field(default_factory=lambda: {kind: [] for kind in FILES.values()})
    exitcode: int | None = None
    arrived: list[float] = field(default_factory=list)
    """When each history line was last placed (time.time())."""

    def place(self, kind: str, offset: int, content: list[str]) -> None:
        """Put `content` at lines offset, offset+1, ... of the file (gaps stay None)."""
        lines = self.files[kind]
        if len(lines) < offset:
            lines.extend([None] * (offset - len(lines)))
        lines[offset : offset + len(content)] = content
        if kind == "history":
            self.arrived.extend([0.0] * (len(lines) - len(self.arrived)))
            self.arrived[offset : offset + len(content)] = [time.time()] * len(content)

    def summary(self) -> dict[str, Any]:
        last = next((line for line in reversed(self.files["summary"]) if line), None)
        return json.loads(last) if last else {}

    def tail(self, kind: str) -> str:
        return json.dumps([line for line in self.files[kind][-10:] if line is not None])

    def public(self) -> dict[str, Any]:
        history = [json.loads(line) if line is not None else None for line in self.files["history"]]
        config = {k: v.get("value") if isinstance(v, dict) else v for k, v in self.config.items()}
        return {"project": self.project, "entity": self.entity, "history": history,
                "summary": self.summary(), "config": config, "tags": self.tags,
                "exitcode": self.exitcode, "log_lines": len(self.files["logs"]),
                "arrived": self.arrived}  # fmt: skip


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, RunData] = {}

    def upsert(self, variables: dict[str, Any], entity: str) -> RunData:
        run = self.runs.setdefault(variables["name"], RunData())
        run.project = variables.get("project") or run.project or "uncategorized"
        run.entity = entity
        if variables.get("config"):
            run.config.update(json.loads(variables["config"]))
        if variables.get("tags") is not None:
            run.tags = list(variables["tags"])
        return run

    def resume_status(self, name: str) -> dict[str, Any] | None:
        run = self.runs.get(name)
        if run is None:
            return None
        return {"id": f"bucket-{name}", "name": name, "displayName": name,
                "summaryMetrics": json.dumps(run.summary()),
                "historyLineCount": len(run.files["history"]), "eventsLineCount": len(run.files["events"]),
                "logLineCount": len(run.files["logs"]), "historyTail": run.tail("history"),
                "eventsTail": run.tail("events"), "config": json.dumps(run.config), "tags": run.tags,
                "notes": None, "wandbConfig": json.dumps({"t": 1})}  # fmt: skip

    def stream(self, name: str, request: dict[str, Any]) -> None:
        run = self.runs.setdefault(name, RunData())
        for file_name, chunk in (request.get("files") or {}).items():
            kind = FILES.get(file_name)
            if kind is not None:
                run.place(kind, int(chunk.get("offset") or 0), list(chunk.get("content") or []))
        if request.get("complete"):
            run.exitcode = int(request.get("exitcode") or 0)


def _graphql(op: str, variables: dict[str, Any], base: str, store: Store) -> dict[str, Any]:
    entity = variables.get("entity") or "nlp-lab"
    project_of = {"id": "p1", "name": variables.get("project") or "uncategorized",
                  "entity": {"id": "e1", "name": entity}}  # fmt: skip
    if op == "RunResumeStatus":
        bucket = store.resume_status(variables.get("name") or "")
        return {"model": {**project_of, "bucket": bucket}}
    if op == "UpsertBucket":
        run = store.upsert(variables, entity)
        bucket = {"id": f"bucket-{variables.get('name')}", "name": variables.get("name"),
                  "displayName": variables.get("displayName"), "description": None,
                  "config": json.dumps(run.config), "sweepName": None, "project": project_of,
                  "historyLineCount": len(run.files["history"])}  # fmt: skip
        return {"upsertBucket": {"bucket": bucket, "inserted": True}}
    if op == "ServerFeaturesQuery":
        return {"serverInfo": {"features": []}}
    if op == "CreateRunFiles":
        name = variables.get("run")
        files = [{"name": f, "uploadUrl": f"{base}/upload/{name}/{f}"} for f in variables.get("files", [])]
        return {"createRunFiles": {"runID": f"bucket-{name}", "uploadHeaders": [], "files": files}}
    if op in ("Viewer", "ViewerQuery"):
        return {"viewer": {"id": "u1", "entity": entity, "username": "tester", "flags": "{}",
                           "teams": {"edges": []}}}  # fmt: skip
    return {}


def serve(log: str, status: int, hang: bool) -> None:
    store = Store()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if hang and self.path != "/_state":
                time.sleep(3600)
                return
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            entry: dict[str, Any] = {"method": self.command, "path": self.path, "bytes": len(body)}
            payload: dict[str, Any] | None = None
            with store.lock:
                if self.path == "/_state":
                    payload = {"runs": {name: run.public() for name, run in store.runs.items()}}
                elif self.path.startswith("/graphql"):
                    request = json.loads(body or b"{}")
                    entry["operation"] = request.get("operationName")
                    variables = request.get("variables") or {}
                    entry["variables"] = {k: v for k, v in variables.items() if k != "config"}
                    base = f"http://127.0.0.1:{self.server.server_address[1]}"  # type: ignore[index]
                    op = entry["operation"] or ""
                    payload = {"data": _graphql(op, variables, base, store) if status < 300 else {}}
                elif self.path.endswith("/file_stream"):
                    request = json.loads(body or b"{}")
                    entry["files"] = {
                        k: {"offset": v.get("offset"), "lines": len(v.get("content") or [])}
                        for k, v in (request.get("files") or {}).items()
                    }
                    if status < 300:
                        store.stream(self.path.rstrip("/").split("/")[-2], request)
                    payload = {"exitcode": None, "limits": {}}
                if self.path != "/_state":
                    with open(log, "a") as fh:
                        fh.write(json.dumps(entry) + "\n")
            out = json.dumps(payload if payload is not None else {}).encode()
            self.send_response(200 if self.path == "/_state" else status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


@dataclass
class Server:
    """A running recording server, as a test talks to it."""

    log: Path
    url: str

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def asked(self, operation: str = "UpsertBucket") -> set[str]:
        """The W&B run ids the server got `operation` for (UpsertBucket: create or update the run)."""
        return {e["variables"]["name"] for e in self.requests() if e.get("operation") == operation}

    def runs(self) -> dict[str, dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_state", timeout=10) as answer:
            runs: dict[str, dict[str, Any]] = json.load(answer)["runs"]
        return runs

    def steps(self, wandb_id: str) -> list[int | None]:
        """The `_step` of each history line the server holds for the run, in line order."""
        return [(row or {}).get("_step") for row in self.runs().get(wandb_id, {}).get("history", [])]


@contextlib.contextmanager
def running(log: Path, *args: str) -> Iterator[Server]:
    """Start the server (`args`: --status CODE, --hang), yield it, stop it."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--log", str(log), *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield Server(log, f"http://127.0.0.1:{proc.stdout.readline().strip()}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    serve(args.log, args.status, args.hang)
