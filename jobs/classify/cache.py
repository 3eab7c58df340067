"""The response cache of the classify job: every answer kept as it arrives, shared by all runs.

One SQLite file, `$LAUNCH_HOME/cache/classify.sqlite`, in WAL mode, so concurrent jobs (a requeued
job, two recipes on the same endpoint) read and append safely. An entry's key hashes everything
that decides the answer: endpoint, model, sampling settings, whether logprobs were asked for, and
the exact messages. Only answers are stored (never a failed call, never a key or a header).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from launcher.paths import launch_home

SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, endpoint TEXT NOT NULL, model TEXT NOT NULL,
    response TEXT NOT NULL, created REAL NOT NULL)"""


def cache_path() -> Path:
    return launch_home() / "cache" / "classify.sqlite"


def request_key(endpoint: str, model: str, settings: dict[str, Any], messages: Any) -> str:
    """sha256 of what decides an answer (JSON with sorted keys)."""
    blob = json.dumps([endpoint, model, settings, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """get/put of JSON answers by key; `enabled=False` makes it a no-op (eval.cache: false)."""

    def __init__(self, path: Path | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = path or cache_path()
        self._db: sqlite3.Connection | None = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)

    def get(self, key: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, endpoint: str, model: str, response: dict[str, Any]) -> None:
        """Store one answer now (its own transaction: a crash loses at most the answer in flight)."""
        if self._db is None:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, endpoint, model, response, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, endpoint, model, json.dumps(response, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
