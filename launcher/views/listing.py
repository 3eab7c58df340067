"""Rich tables for `launch recipes` and `launch clusters`, and `launch status RUN` (the run table
of `launch status` is launcher/views/status.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from launcher import paths
from launcher.artifacts.uploads import upload_state
from launcher.config.grid import overrides_facts
from launcher.config.yamlio import Loader
from launcher.kinds.table import KINDS
from launcher.runs.registry import RunRow
from launcher.views.status import STATE_STYLE, last_error_line, wandb_text
from launcher.views.status import age as _age


def header_comment(path: Path) -> str:
    """The first sentence of a YAML file's header comment: its purpose."""
    words: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#") or line.lstrip("# ").startswith("launch "):
                break
            words.append(line.lstrip("#").strip())
    text = " ".join(words)
    end = text.find(": ") if 0 < text.find(": ") < text.find(". ") else text.find(". ")
    return text if end < 0 else text[:end]


def _quick(path: Path) -> dict[str, Any]:
    """The file's top-level keys, or `_error` saying why it cannot be read (the row shows it)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    except UnicodeDecodeError:
        return {"_error": "error: not UTF-8 text"}
    except OSError as err:
        return {"_error": f"error: cannot read: {err.strerror}"}
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None)
        return {"_error": f"error: malformed YAML{f' ({problem})' if problem else ''}"}
    return data if isinstance(data, dict) else {"_error": "error: not a mapping"}


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """Every column as wide as its longest cell, but the last, which is cut to fit the terminal."""
    table = Table(title=title, title_justify="left")
    used = 1
    for i, col in enumerate(columns[:-1]):
        width = max([len(col)] + [len(r[i]) for r in rows])
        table.add_column(col, no_wrap=True, min_width=width)
        used += width + 3
    room = max(12, Console().width - used - 4)
    table.add_column(columns[-1], no_wrap=True, overflow="ellipsis", max_width=room)
    for row in rows:
        table.add_row(*row)
    return table


def recipe_table() -> Table:
    rows = []
    for name, path in sorted(paths.catalog("recipes").items()):
        data = _quick(path)
        res = data.get("resources") or {}
        per_node = res.get("gpus_per_node", 1)
        gpus = f"{res.get('nodes', 1)}x{per_node}" if per_node else "cpu"
        model = str((data.get("model") or {}).get("name_or_path", "")).rsplit("/", 1)[-1]
        model = model if len(model) <= 24 else model[:23] + "…"  # every column still fits 80
        job = str(data.get("job", "?"))
        kind = KINDS.get(job)
        if kind is not None and kind.methods:
            job = f"{job}/{data.get('method', 'fft')}"
        if kind is not None and not kind.implemented:
            job += " (not yet)"
        if "_error" in data:
            job = gpus = ""
        rows.append([name, job, gpus, model, data.get("_error") or header_comment(path)])
    return _table("recipes", ["name", "job", "GPUs", "model", "what"], rows)


def cluster_table() -> Table:
    rows = []
    for name, path in sorted(paths.catalog("clusters").items()):
        data = _quick(path)
        gpu = data.get("gpu")
        if isinstance(gpu, dict):
            gpus = f"{gpu.get('per_node')}x {gpu.get('type') or 'GPU'} {gpu.get('memory_gb')} GB"
        else:
            gpus = "detected" if gpu == "auto" else "none"
        backend = str(data.get("backend", "?"))
        if "_error" in data:
            backend = gpus = ""
        rows.append([name, backend, gpus, data.get("_error") or header_comment(path)])
    return _table("clusters", ["name", "backend", "GPUs per node", "what"], rows)


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def status_facts(row: RunRow) -> list[tuple[str, str]]:
    """`progress` (from progress.json) and `best F1` (from results/**/metrics.json), when there."""
    from launcher.runs.progress import read_progress
    from launcher.views.status import best_result, best_text, progress_text

    facts = []
    progress = read_progress(Path(row.run_dir))
    if progress is not None:
        facts.append(("progress", f"{progress_text(progress, row.state)}  (at {progress.updated_at})"))
    best = best_result(Path(row.run_dir))
    if best is not None:
        facts.append(("best F1", best_text(best).removeprefix("best F1 ")))
    return facts


def run_detail(row: RunRow) -> Group:
    """`launch status RUN`: facts as `key  value` lines (never wrapped, so paths and the
    `wandb sync` command can be copied), the tasks, and the log tail of a failed run."""
    facts = [("run", row.run_id), ("state", row.state)]
    if row.note:
        facts.append(("why", row.note))
    error = last_error_line(Path(row.run_dir)) if row.state in ("failed", "timeout") else None
    if error:
        facts.append(("error", error))
    facts += status_facts(row)
    facts += [
        ("recipe", row.recipe),
        ("cluster", f"{row.cluster} ({row.backend})"),
        ("run directory", row.run_dir),
        ("created", f"{row.created_at} ({_age(row.created_at)})"),
    ]
    if row.restarts:
        facts.append(("restarts", str(row.restarts)))
    if row.parent:
        facts.append(("parent run", row.parent))
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
        line.append(value, style=STATE_STYLE.get(value, "") if key == "state" else "")
        line.no_wrap, line.overflow = True, "ignore"
        parts.append(line)
    from launcher.loop.chain import chain_lines  # the run's --then chain, when it has one

    chained = chain_lines(Path(row.run_dir), row.state)
    parts += [Text(line, no_wrap=True, overflow="ignore") for line in chained]
    tasks = Table(title="tasks", title_justify="left")
    for col in ("task", "job id", "state"):
        tasks.add_column(col)
    for task, job_id, state in row.jobs:
        tasks.add_row(str(task), job_id, _state(state))
    parts.append(tasks)
    if row.state in ("failed", "timeout"):
        logs = Path(row.run_dir, "logs")
        for log in sorted(logs.glob("*.err")) + sorted(logs.glob("*.out")):
            tail = _tail(log)
            if tail:
                parts.append(Text(f"--- last lines of {log}", style="bold red"))
                parts.append(Text("\n".join(tail)))
                break
    return Group(*parts)
