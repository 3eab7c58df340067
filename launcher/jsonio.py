"""Small JSON files, read and written safely: atomic writes, and the one reader of a JSON object.

What is written is standard JSON: a NaN or an infinity (which json.dumps would write as the
non-JSON `NaN`/`Infinity`) is written as `null` (`finite`, `dumps`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def finite(data: Any) -> Any:
    """`data` with every non-finite float (NaN, +-Infinity) replaced by None, in dicts, lists and
    tuples at any depth; other values as they are."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def dumps(data: Any, **kwargs: Any) -> str:
    """json.dumps of `finite(data)`, refusing anything non-finite (standard JSON, never `NaN`)."""
    return json.dumps(finite(data), allow_nan=False, **kwargs)


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
    """JSON (`dumps`: non-finite numbers as null), written atomically."""
    atomic_write_text(path, dumps(data, indent=indent) + "\n")


def read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when the file is missing or unreadable, is not JSON (or nests
    too deeply to parse), or holds something other than an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
