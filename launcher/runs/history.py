"""A training run's loss by step, read from files only (torch-free: bench and compare use it).

Where it comes from, first found wins:

1. `results/train.json` `history`: the job's own summary, written when training ends. It holds
   every logging step (HF Trainer's `log_history`, restored across a requeue) or, for spaCy, one
   entry per epoch (its step is the epoch, as its checkpoints are). It covers steps after the
   last checkpoint, which (2) does not.
2. The latest complete checkpoint's `trainer_state.json` `log_history`: a run still training,
   stopped or killed has no train.json yet, but each HF checkpoint carries its history so far.
3. `progress.json` (one point: the latest logging step): nothing better exists while the first
   checkpoint is not written; it is a single point, not a curve, so it comes last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.jsonio import read_object
from launcher.runs.checkpoints import complete_checkpoints


@dataclass(frozen=True)
class Point:
    step: int
    loss: float
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class History:
    points: list[Point]
    source: str
    """The file the points came from, relative to the run directory ('' when none)."""
    summary: dict[str, Any]
    """results/train.json as a whole ({} when absent): seconds, global_step, samples, ..."""

    @property
    def final_loss(self) -> float | None:
        return self.points[-1].loss if self.points else None

    @property
    def tokens_per_s(self) -> float | None:
        """Mean useful tokens/s over the logged intervals (jobs.callbacks.Throughput)."""
        rates = [p.tokens_per_s for p in self.points if p.tokens_per_s is not None]
        return sum(rates) / len(rates) if rates else None


def _points(entries: Any) -> list[Point]:
    """Entries with a numeric loss and a step (or an epoch, spaCy's step), by step."""
    points: dict[int, Point] = {}
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("loss"), int | float):
            continue
        step = e.get("step", e.get("epoch"))
        if not isinstance(step, int | float):
            continue
        rate = e.get("useful_tokens_per_s", e.get("tokens_per_s"))
        points[int(step)] = Point(
            int(step), float(e["loss"]), float(rate) if isinstance(rate, int | float) else None
        )
    return [points[s] for s in sorted(points)]


def training_history(run_dir: Path) -> History:
    """The run's loss by step (module docstring); empty points when it logged none."""
    summary = read_object(run_dir / "results" / "train.json") or {}
    points = _points(summary.get("history"))
    if points:
        return History(points, "results/train.json", summary)
    for ckpt in reversed(complete_checkpoints(run_dir)):
        state = read_object(ckpt / "trainer_state.json") or {}
        points = _points(state.get("log_history"))
        if points:
            return History(points, f"checkpoints/{ckpt.name}/trainer_state.json", summary)
    progress = read_object(run_dir / "progress.json")
    points = _points([progress]) if progress is not None else []
    return History(points, "progress.json" if points else "", summary)
