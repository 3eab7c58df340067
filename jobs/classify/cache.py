"""The response cache of the classify job: every answer kept as it arrives, shared by all runs.

One SQLite file, `$LAUNCH_HOME/cache/classify.sqlite`, in WAL mode, so concurrent jobs (a requeued
job, two recipes on the same endpoint) read and append safely. An entry's key hashes everything
that decides the answer: endpoint, model, sampling settings, whether logprobs were asked for, and
the exact messages. Only answers are stored (never a failed call, never a key or a header), as
standard JSON (launcher.jsonio.dumps).

A cache that cannot be used (a file that is no SQLite database, a path that cannot be opened, a
read-only file or folder) is said in one line naming the file, and the job goes on without it: every
`get` misses and every `put` is dropped. That also happens when a read or a write fails later on.
An entry that is not a JSON object reads as a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.jsonio import dumps
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
    """get/put of JSON answers by key; `enabled=False` makes it a no-op (eval.cache: false), and so
    does a cache that cannot be used (module docstring: `warn` gets the one line, `broken` its
    reason)."""

    def __init__(self, path: Path | None = None, enabled: bool = True,
                 warn: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.enabled = enabled
        self.path = path or cache_path()
        self.broken: str | None = None
        self._warn = warn or (lambda line: print(line, flush=True))
        self._db: sqlite3.Connection | None = None
        if enabled:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(
                    self.path, timeout=60, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(SCHEMA)
                self._db.execute("BEGIN IMMEDIATE")  # can it be written? (a read-only file or folder)
                self._db.execute("DELETE FROM responses WHERE key = ''")  # a write of nothing
                self._db.execute("ROLLBACK")
            except (sqlite3.Error, OSError) as err:
                self._give_up(err)

    def _give_up(self, err: BaseException) -> None:
        """Say once that the cache is unusable, and use it no more."""
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        if self.broken is None:
            self.broken = str(err).splitlines()[0] if str(err) else type(err).__name__
            self._warn(f"warning: response cache {self.path}: {self.broken}; running without the cache "
                       f"(nothing is read from it or stored in it)")  # fmt: skip

    def get(self, key: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as err:
            self._give_up(err)
            return None
        try:
            data = json.loads(row[0]) if row else None
        except (TypeError, ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, endpoint: str, model: str, response: dict[str, Any]) -> None:
        """Store one answer now (its own transaction: a crash loses at most the answer in flight)."""
        if self._db is None:
            return
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, endpoint, model, response, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, endpoint, model, dumps(response, ensure_ascii=False), time.time()),
            )
        except sqlite3.Error as err:
            self._give_up(err)

    def __len__(self) -> int:
        if self._db is None:
            return 0
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        except sqlite3.Error as err:
            self._give_up(err)
            return 0

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
