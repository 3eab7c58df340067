"""Small JSON files, read and written safely: atomic writes, and the one reader of a JSON object."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write a file so a reader sees the old one or the new one, never half of one: a temporary
    file beside it (unique per process), optionally fsynced, then renamed over it. On failure
    (a full disk) the temporary file is removed and the old file is left as it was."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, fsync: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), fsync)


def atomic_write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """JSON, written atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when the file is missing or unreadable, is not JSON (or nests
    too deeply to parse), or holds something other than an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
