"""A loopback W&B server real enough for `wandb sync`: it answers the GraphQL operations, the
file stream and the file uploads that wandb-core sends while syncing an offline run, and records
every request (one JSON line each) so a test can see what reached "W&B".

    python tests/support/wandb_server.py --log REQUESTS.jsonl [--status 403]

Prints its port on the first line of stdout. `--status` answers every request with that HTTP
status instead (how a test makes the sync fail). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.server
import json
import threading
from typing import Any


def _graphql(op: str, variables: dict[str, Any], base: str) -> dict[str, Any]:
    entity = variables.get("entity") or "nlp-lab"
    if op == "RunResumeStatus":
        return {"model": None}
    if op == "UpsertBucket":
        project = {"id": "p1", "name": variables.get("project") or "uncategorized",
                   "entity": {"id": "e1", "name": entity}}  # fmt: skip
        bucket = {"id": "b1", "name": variables.get("name"), "displayName": variables.get("displayName"),
                  "description": None, "config": None, "sweepName": None, "project": project,
                  "historyLineCount": 0}  # fmt: skip
        return {"upsertBucket": {"bucket": bucket, "inserted": True}}
    if op == "ServerFeaturesQuery":
        return {"serverInfo": {"features": []}}
    if op == "CreateRunFiles":
        run = variables.get("run")
        files = [{"name": f, "uploadUrl": f"{base}/upload/{run}/{f}"} for f in variables.get("files", [])]
        return {"createRunFiles": {"runID": "b1", "uploadHeaders": [], "files": files}}
    if op in ("Viewer", "ViewerQuery"):
        return {"viewer": {"id": "u1", "entity": entity, "username": "tester", "flags": "{}",
                           "teams": {"edges": []}}}  # fmt: skip
    return {}


def serve(log: str, status: int) -> None:
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            entry: dict[str, Any] = {"method": self.command, "path": self.path}
            payload: dict[str, Any] | None = None
            if self.path.startswith("/graphql"):
                request = json.loads(body or b"{}")
                entry["operation"] = request.get("operationName")
                entry["variables"] = {
                    k: v for k, v in (request.get("variables") or {}).items() if k != "config"
                }
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                payload = {"data": _graphql(entry["operation"] or "", entry["variables"], base)}
            elif self.path.endswith("/file_stream"):
                payload = {"exitcode": None, "limits": {}}
            with lock, open(log, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            out = json.dumps(payload if payload is not None else {}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()
    serve(args.log, args.status)
