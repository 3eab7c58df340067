"""launch.json and other small JSON files of a run directory, read and written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from launcher.jsonio import atomic_write_json, read_object


def read_launch_info(run_dir: Path) -> dict[str, Any]:
    return read_object(run_dir / "launch.json") or {}


def update_launch_info(run_dir: Path, **changes: Any) -> None:
    """Merge `changes` into launch.json (jobs use this for the W&B id, backends for job ids)."""
    data = read_launch_info(run_dir)
    data.update(changes)
    atomic_write_json(run_dir / "launch.json", data)
