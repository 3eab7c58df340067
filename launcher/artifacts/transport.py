"""Where an artifact store's bytes go: the `Transport` interface, which a local directory tree
(launcher.artifacts.local) and an S3 bucket (launcher.artifacts.s3) implement, and what both
sides and the store share: options, file entries, the error type."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from launcher.errors import UserError

READ_BLOCK = 1 << 20
ByteProgress = Callable[[int], None]
"""Called with the number of bytes just sent."""


class StoreError(UserError):
    """An upload or download that did not succeed; one line, no secrets. Exit code 1."""

    exit_code = 1


class StoreUnreachable(StoreError):
    """The store's endpoint could not be reached or did not answer: a broken environment (exit 1)."""


@dataclass(frozen=True)
class StoreOptions:
    """Timeouts, retries and part sizes; defaults from LAUNCH_S3_* (launcher.artifacts.store)."""

    timeout_s: float = 60.0
    attempts: int = 3
    backoff_s: float = 2.0
    chunk_bytes: int = 8 << 20

    @classmethod
    def from_env(cls) -> StoreOptions:
        env = os.environ
        return cls(
            timeout_s=float(env.get("LAUNCH_S3_TIMEOUT", cls.timeout_s)),
            attempts=max(1, int(env.get("LAUNCH_S3_ATTEMPTS", cls.attempts))),
            backoff_s=float(env.get("LAUNCH_S3_BACKOFF", cls.backoff_s)),
            chunk_bytes=max(5 << 20, int(float(env.get("LAUNCH_S3_CHUNK_MB", 8)) * (1 << 20))),
        )


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest; `etag` is what S3 should report for it (not stored remotely)."""

    path: str
    size: int
    sha256: str
    etag: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(READ_BLOCK):
            sha.update(block)
    return sha.hexdigest()


class Transport(Protocol):
    """Objects under keys: S3 object keys, or absolute paths for a local tree. `verify` returns None
    when the object at `key` is `entry`'s file, else what differs; `get_bytes` None when absent."""

    endpoint: str

    def check(self, key: str) -> None: ...
    def put_file(self, local: Path, key: str, entry: FileEntry, progress: ByteProgress | None) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def verify(self, key: str, entry: FileEntry) -> str | None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
