"""Checkpoint directories of a run, never taken for complete before they are (torch-free: the
launcher lists them, jobs write them).

A checkpoint is `checkpoints/checkpoint-<step>/`; it counts as complete only once the marker
file `COMPLETE` exists in it, written last, after every other file was flushed.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from launcher.jsonio import atomic_write_json

MARKER = "COMPLETE"
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    """`checkpoint-<step>`: the one spelling of a checkpoint directory's name."""
    return f"checkpoint-{step}"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / checkpoint_name(step)


def step_of(path: Path) -> int | None:
    m = CHECKPOINT_NAME.match(path.name)
    return int(m.group(1)) if m else None


def mark_complete(path: Path, **info: object) -> None:
    """Flush everything under `path`, then write the marker (atomically)."""
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb+") as fh:
                os.fsync(fh.fileno())
    atomic_write_json(path / MARKER, {"completed_at": time.time(), **info}, indent=None)


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, by step, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and step_of(p) is not None and is_complete(p)]
    return sorted(found, key=lambda p: step_of(p) or 0)


def latest_complete(run_dir: Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None
