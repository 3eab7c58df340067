"""`launch compare RUN RUN ...`: what differs between runs, and how they did, side by side.

Files only (no scheduler call, but for GPU-hours not recorded yet): each run's resolved `recipe.yaml`,
its results (every metrics.json under results/, both layouts), its training history
(launcher.runs.history) and launch.json. Three parts:

1. the resolved recipe keys whose values differ, as dotted keys (`train.lr`), one row each,
   one column per run (a key one run lacks shows `—`);
2. metrics: best strict entity F1 (and its step, eval recipe and sample size), final training
   loss, mean useful tokens/s (jobs.callbacks.Throughput's `useful_tokens_per_s` in the log
   history), training time (results/train.json `seconds`, the trainer's own clock) and wall time
   (launch.json `created_at`, the submission, to the last write of the run's logs), GPU-hours
   used (usage.json of an ended run; else its scheduler is asked once: launcher.runs.service);
3. with `--png FILE`, loss and F1 curves of all of them in one picture (launcher.scoring.plots).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from launcher.errors import UserError
from launcher.loop.reeval import TRAINING_KINDS
from launcher.runs import cost
from launcher.runs import service as launching
from launcher.runs.cost import hours_text
from launcher.runs.find import find_run
from launcher.runs.history import History, training_history
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.registry import Registry
from launcher.scoring.bench import TOKEN_BIO, Row, f1_curves, run_rows

MISSING = "—"


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    run_dir: Path
    recipe: dict[str, Any]
    rows: list[Row]
    history: History
    gpu_hours: float | None = None

    @property
    def best(self) -> Row | None:
        """The row with the highest strict F1 (entity or token level, never the BIO extra row)."""
        scored = [r for r in self.rows if r.level != TOKEN_BIO and r.f1 is not None]
        return max(scored, key=lambda r: (r.f1 or 0.0, -(r.step or 0)), default=None)

    @property
    def train_seconds(self) -> float | None:
        seconds = self.history.summary.get("seconds")
        return float(seconds) if isinstance(seconds, int | float) else None

    @property
    def wall_seconds(self) -> float | None:
        created = LaunchInfo.read(self.run_dir).created_at
        logs = [p.stat().st_mtime for p in (self.run_dir / "logs").glob("*") if p.is_file()]
        if not created or not logs:
            return None
        try:
            start = datetime.fromisoformat(created).timestamp()
        except ValueError:
            return None
        return max(max(logs) - start, 0.0)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-5}} -> {"train.lr": 1e-5}; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def differing(recipes: Sequence[dict[str, Any]]) -> list[str]:
    """The dotted keys whose value is not the same in every recipe (absent counts as a value), sorted."""
    flats = [flatten(r) for r in recipes]
    keys = sorted({k for f in flats for k in f})
    absent = object()
    return [
        k for k in keys if len({json.dumps(f.get(k, absent), default=str, sort_keys=True) for f in flats}) > 1
    ]


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def load(registry: Registry, refs: Sequence[str]) -> list[RunSummary]:
    """Each run's summary; a UserError (exit 2, one line) for a ref that is no run, or fewer than two."""

    if len(refs) < 2:
        raise UserError(f"compare takes two or more runs, got {len(refs)}; e.g. launch compare RUN_A RUN_B")
    summaries = []
    for ref in refs:
        run_id, run_dir, row = find_run(registry, ref, TRAINING_KINDS)
        try:
            recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
        except (OSError, yaml.YAMLError) as err:
            raise UserError(
                f"{run_dir / 'recipe.yaml'}: cannot be read: {str(err).splitlines()[0]}"
            ) from None
        if not isinstance(recipe, dict):
            raise UserError(f"{run_dir / 'recipe.yaml'}: not a recipe (a YAML mapping)")
        used = launching.used_gpu_hours([row])[row.run_id] if row is not None else cost.recorded(run_dir)
        summaries.append(
            RunSummary(run_id, run_dir, recipe, run_rows(run_dir), training_history(run_dir), used)
        )
    return summaries


def key_rows(summaries: Sequence[RunSummary]) -> list[list[str]]:
    """[key, value of run 1, value of run 2, ...] for each differing key."""
    flats = [flatten(s.recipe) for s in summaries]
    keys = differing([s.recipe for s in summaries])
    return [[k, *(_value(f[k]) if k in f else MISSING for f in flats)] for k in keys]


def _num(value: float | None, fmt: str) -> str:
    return MISSING if value is None else format(value, fmt)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


METRICS = ("best strict F1", "  at step", "  eval recipe (n)", "final loss", "tokens/s", "train time",
           "wall time", "GPU-hours")  # fmt: skip


def metric_rows(summaries: Sequence[RunSummary]) -> list[list[str]]:
    """[metric, run 1, run 2, ...] for each of METRICS."""
    columns = []
    for s in summaries:
        best = s.best
        columns.append([
            _num(best.f1 if best else None, ".4f"),
            MISSING if best is None or best.step is None else str(best.step),
            MISSING if best is None else f"{best.eval or '?'} (n={MISSING if best.n is None else best.n})",
            _num(s.history.final_loss, ".4f"),
            _num(s.history.tokens_per_s, ".0f"),
            _duration(s.train_seconds),
            _duration(s.wall_seconds),
            MISSING if s.gpu_hours is None else hours_text(s.gpu_hours),
        ])  # fmt: skip
    return [[name, *(col[i] for col in columns)] for i, name in enumerate(METRICS)]


def tables(summaries: Sequence[RunSummary]) -> list[Any]:
    """Two rich Tables: the differing recipe keys, then the metrics."""
    from rich.table import Table

    out = []
    for title, first, rows in (
        ("recipe keys that differ", "key", key_rows(summaries)),
        ("metrics", "metric", metric_rows(summaries)),
    ):
        t = Table(title=title, title_justify="left")
        t.add_column(first, no_wrap=True)
        for s in summaries:
            t.add_column(s.run_id, overflow="fold")
        if not rows and first == "key":
            t.add_row("(none: the resolved recipes are the same)", *[""] * len(summaries))
        for row in rows:
            t.add_row(*row)
        out.append(t)
    return out


PNG_NAME = "compare.png"
"""The file `--png DIR` writes inside an existing directory."""


def png_target(path: Path) -> Path:
    """Where `--png PATH` writes: PATH itself when it ends in .png, `PATH/compare.png` for an
    existing directory; else a UserError naming the argument (checked before anything is read)."""
    if path.is_dir():
        return path / PNG_NAME
    if path.suffix.lower() != ".png":
        what = f"ends in '{path.suffix}'" if path.suffix else "has no suffix"
        raise UserError(
            f"--png {path}: {what} and is not a directory; give a .png file (e.g. --png compare.png) "
            "or an existing directory"
        )
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"--png {path}: {path.parent} is not a directory")
    return path


def write_png(summaries: Sequence[RunSummary], path: Path) -> Path:
    """Loss by step (left) and F1 by checkpoint step (right) of every run, in one PNG at
    `png_target(path)`; returns the path written."""
    path = png_target(path)
    from launcher.scoring import plots

    curves = f1_curves([row for s in summaries for row in s.rows])
    histories = {s.run_id: s.history for s in summaries}
    path.parent.mkdir(parents=True, exist_ok=True)
    return plots.save(plots.both_figure(curves, histories), path)
