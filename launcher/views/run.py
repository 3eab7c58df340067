"""One run: `launch status RUN` (its facts, tasks and log tail) and `launch show RUN` (its recipe)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from launcher import paths
from launcher.artifacts.uploads import upload_state
from launcher.config.grid import overrides_facts
from launcher.errors import UserError
from launcher.runs.cost import hours_text
from launcher.runs.find import find_run
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.progress import read_progress
from launcher.runs.registry import Registry, RunRow
from launcher.runs.state import RunState
from launcher.views.code import code_facts, code_text
from launcher.views.status import best_result, best_text, last_error_line, progress_text, wandb_text
from launcher.views.status_table import age, failed
from launcher.views.sweeps import point_text


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def status_facts(row: RunRow) -> list[tuple[str, str]]:
    """`progress` (from progress.json) and `best F1` (from results/**/metrics.json), when there."""
    facts = []
    progress = read_progress(Path(row.run_dir))
    if progress is not None:
        facts.append(("progress", f"{progress_text(progress, row.state)}  (at {progress.updated_at})"))
    best = best_result(Path(row.run_dir))
    if best is not None:
        facts.append(("best F1", best_text(best).removeprefix("best F1 ")))
    return facts


def run_detail(row: RunRow, chain: Sequence[str] = (), gpu_hours: float | None = None) -> Group:
    """`launch status RUN`: facts as `key  value` lines (never wrapped, so paths and the
    `wandb sync` command can be copied), the lines of its `--then` chain (`chain`: the verb asks
    launcher.loop.chain), the tasks, and the log tail of a failed run."""
    facts = [("run", row.run_id), ("state", row.state)]
    if row.note:
        facts.append(("why", row.note))
    error = last_error_line(Path(row.run_dir)) if failed(row.state) else None
    if error:
        facts.append(("error", error))
    facts += status_facts(row)
    facts += [
        ("recipe", row.recipe),
        ("cluster", f"{row.cluster} ({row.backend})"),
        ("run directory", row.run_dir if Path(row.run_dir).is_dir() else f"{row.run_dir} (gone: deleted?)"),
        ("created", f"{row.created_at} ({age(row.created_at)})"),
    ]
    if row.restarts:
        facts.append(("restarts", str(row.restarts)))
    if gpu_hours is not None:  # the verb asks launcher.runs.service.used_gpu_hours
        facts.append(("GPU-hours", hours_text(gpu_hours) + ("" if RunState.ended(row.state) else " so far")))
    if row.parent:
        facts.append(("parent run", row.parent))
    facts += code_facts(Path(row.run_dir))  # the snapshot (or live checkout) it runs, its git commit
    facts += overrides_facts(Path(row.run_dir))  # launcher/config/grid.py: the --set overrides, the sweep
    w = wandb_text(Path(row.run_dir))
    if w:
        facts.append(("W&B", w))
    uploads = upload_state(Path(row.run_dir)).summary(row.run_id)
    if uploads:
        facts.append(("uploads", uploads))
    parts: list[Any] = []
    for key, value in facts:
        line = Text(f"{key:<15}", style="bold")
        line.append(value, style=RunState.style_of(value) if key == "state" else "")
        line.no_wrap, line.overflow = True, "ignore"
        parts.append(line)
    parts += [Text(line, no_wrap=True, overflow="ignore") for line in chain]
    tasks = Table(title="tasks", title_justify="left")
    for col in ("task", "job id", "state"):
        tasks.add_column(col)
    for task, job_id, state in row.jobs:
        tasks.add_row(str(task), job_id, Text(state, style=RunState.style_of(state)))
    parts.append(tasks)
    if failed(row.state):
        logs = Path(row.run_dir, "logs")
        for log in sorted(logs.glob("*.err")) + sorted(logs.glob("*.out")):
            tail = _tail(log)
            if tail:
                parts.append(Text(f"--- last lines of {log}", style="bold red"))
                parts.append(Text("\n".join(tail)))
                break
    return Group(*parts)


def show_run_text(ref: str) -> str | None:
    """`launch show RUN`: the resolved recipe a run ran with, headed by its overrides and hashes;
    None when `ref` is a recipe (name or file) or names no run."""
    try:
        paths.resolve("recipes", ref)
        return None
    except UserError:
        pass
    try:
        run_id, run_dir, _ = find_run(Registry(), ref)
    except UserError:
        return None
    info = LaunchInfo.read(run_dir)
    head = [
        f"# run {run_id}: the resolved recipe it ran with ({run_dir / 'recipe.yaml'})",
        f"# recipe {info.recipe or '?'} from {info.recipe_source or '?'}",
        f"# overrides: {' '.join(info.overrides) if info.overrides else 'none'}",
        f"# recipe_hash {info.recipe_hash or '?'} (before the overrides: {info.recipe_hash_base or '?'})",
    ]
    if info.sweep:
        head.append(f"# sweep {info.sweep}, point {point_text(info.sweep_point or {})}")
    code = code_text(info)
    if code:
        head.append(f"# code: {code}")
    return "\n".join(head) + "\n" + (run_dir / "recipe.yaml").read_text()
