"""launch.json and other small JSON files of a run directory, read and written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_launch_info(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "launch.json").read_text())
    except (OSError, ValueError):
        return {}


def update_launch_info(run_dir: Path, **changes: Any) -> None:
    """Merge `changes` into launch.json (jobs use this for the W&B id, backends for job ids)."""
    data = read_launch_info(run_dir)
    data.update(changes)
    atomic_write_json(run_dir / "launch.json", data)
