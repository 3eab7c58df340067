"""`<run_dir>/progress.json`: where a job stands, written by the job (a training job every logging
step, an evaluation after each batch) and read by `launch status` and `--follow` (a small file,
never the logs).

Shape (`Progress`): step, total_steps, epoch, loss, lr, tokens_per_s, eta_s, updated_at (ISO 8601);
an evaluation counts sentences (`unit: sentence`, step = sentences done, `items_per_s`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from launcher.jsonio import atomic_write_json

PROGRESS_FILE = "progress.json"


class Progress(BaseModel):
    """One progress.json. Any number may be missing (None) when the job does not know it yet."""

    model_config = ConfigDict(extra="forbid")

    step: int
    total_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    updated_at: str
    unit: Literal["step", "sentence"] = "step"
    items_per_s: float | None = None


def write_progress(run_dir: Path, progress: Progress) -> None:
    """Atomically: a reader sees the previous file or this one."""
    atomic_write_json(run_dir / PROGRESS_FILE, progress.model_dump(), indent=None)


def read_progress(run_dir: Path) -> Progress | None:
    """The run's progress.json, or None when it has none or it cannot be read."""
    try:
        return Progress.model_validate(json.loads((run_dir / PROGRESS_FILE).read_text()))
    except (OSError, ValueError, ValidationError, RecursionError):
        return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def format_duration(seconds: float | None) -> str:
    """`45s`, `1m12s`, `2h03m`, `3d04h`: two units at most; `?` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def progress_line(p: Progress, lr: bool = True, eta: bool = True) -> str:
    """The job's log line: `step 120/318  loss 1.234  lr 1.9e-05  412 tok/s  ETA 1m12s` (an
    evaluation's: `64/200 sentences  1.42 sentences/s  ETA 1m36s`); `launch status` leaves out the
    lr, and the ETA once the run ended."""
    if p.unit == "sentence":
        parts = [f"{p.step}/{p.total_steps} sentences" if p.total_steps else f"{p.step} sentences"]
        if p.items_per_s is not None:
            parts.append(f"{p.items_per_s:.2f} sentences/s")
        if eta and p.eta_s is not None:
            parts.append(f"ETA {format_duration(p.eta_s)}")
        return "  ".join(parts)
    parts = [f"step {p.step}/{p.total_steps}" if p.total_steps else f"step {p.step}"]
    if p.loss is not None:
        parts.append(f"loss {p.loss:.3f}")
    if lr and p.lr is not None:
        parts.append(f"lr {p.lr:.1e}")
    if p.tokens_per_s is not None:
        parts.append(f"{p.tokens_per_s:.0f} tok/s")
    if eta and p.eta_s is not None:
        parts.append(f"ETA {format_duration(p.eta_s)}")
    return "  ".join(parts)


def eta_seconds(elapsed_s: float, steps_done: int, steps_left: int) -> float | None:
    """Remaining time at this session's pace; None before the first step of the session."""
    if steps_done <= 0:
        return None
    return max(steps_left, 0) * elapsed_s / steps_done
