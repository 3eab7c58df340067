"""Rich tables for `launch recipes`, `launch clusters` and `launch status`."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from launcher import paths
from launcher.jobkinds import KINDS
from launcher.registry import RunRow
from launcher.runfiles import read_launch_info
from launcher.sweep_spec import overrides_facts
from launcher.uploads import UploadState, upload_state
from launcher.yamlio import Loader

STATE_STYLE = {
    "submitting": "yellow", "pending": "yellow", "running": "cyan", "completed": "green", "failed": "red",
    "cancelled": "magenta", "timeout": "red", "preempted": "yellow", "unknown": "dim",
}  # fmt: skip


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


def _age(iso: str, suffix: str = " ago") -> str:
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = int((datetime.now(timezone.utc) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}{suffix}"
    return f"{seconds}s{suffix}"


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def wandb_text(run_dir: Path, short: bool = False) -> str:
    """The run's W&B URL, or for an offline run the `wandb sync` command (`offline` if short)."""
    wandb = read_launch_info(run_dir).get("wandb") or {}
    if wandb.get("url"):
        return str(wandb["url"])
    if wandb.get("offline_dir"):
        return "offline" if short else f"offline: wandb sync {wandb['offline_dir']}"
    return ""


def _uploads_short(state: UploadState) -> Text:
    if not state.uri:
        return Text("")
    return Text(f"{len(state.pending)} pending", style="yellow") if state.pending else Text("ok")


def runs_table(rows: list[RunRow]) -> Table:
    """One line per run, laid out for 80 columns: no vertical rules, run ids never cut, the job id
    (or `done/total` tasks), W&B last since it is what a narrow terminal may cut."""
    table = Table(
        title=f"runs ({len(rows)})",
        title_justify="left",
        box=None,
        header_style="bold underline",
        padding=(0, 2, 0, 0),
        pad_edge=False,
    )
    uploads = [upload_state(Path(row.run_dir)) for row in rows]
    with_store = any(u.uri for u in uploads)
    columns = ["run", "state", "cluster", "age", *(["uploads"] * with_store), "job", "W&B"]
    lines = []
    for row, up in zip(rows, uploads, strict=True):
        done = sum(1 for _, _, s in row.jobs if s == "completed")
        # a local id is PID@START; the table shows the PID (`launch status RUN` shows the whole id)
        shown = [j.split("@", 1)[0] for j in row.job_ids]
        job = f"{done}/{len(row.jobs)}" if len(row.jobs) > 1 else ",".join(shown)
        cells = [row.run_id, row.state, row.cluster, _age(row.created_at, suffix="")]
        cells += [_uploads_short(up)] * with_store + [job, wandb_text(Path(row.run_dir), short=True)]
        lines.append(cells)
    for i, col in enumerate(columns):
        if col == "W&B":
            table.add_column(col, no_wrap=True, overflow="ellipsis")
        else:
            width = max([len(col)] + [len(cells[i]) for cells in lines])
            table.add_column(col, no_wrap=True, min_width=width)
    for cells in lines:
        cells[1] = _state(cells[1])
        table.add_row(*cells)
    return table


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


_ERROR_LINE = re.compile(
    r"^([\w.]+\.)?[A-Z]\w*(Error|Exception|Exit|Interrupt)\b"  # a Python exception: `OSError: ...`
    r"|^(\S+: )?(error|fatal)\b",  # `error: ...`, `slurmstepd: error: ...`
    re.IGNORECASE,
)


_SCHEDULER_LINE = re.compile(r"^(srun|slurmstepd|sbatch|\[launch\])\S*:? ")


def last_error_line(run_dir: Path) -> str | None:
    """Why a run failed, from its newest `logs/*.err` (every backend writes its stderr there): the
    job's last line that reads as an error (`ValueError: ...`, `error: ...`), else its last line;
    the scheduler's own lines (`srun: error: task 0: Exited ...`) only when the job wrote none."""
    logs = sorted(Path(run_dir, "logs").glob("*.err"), key=lambda p: p.stat().st_mtime, reverse=True)
    for log in logs:
        try:
            lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            continue
        for candidates in ([line for line in lines if not _SCHEDULER_LINE.match(line)], lines):
            if candidates:
                errors = [line for line in candidates if _ERROR_LINE.match(line)]
                return (errors or candidates)[-1]
    return None


def run_detail(row: RunRow) -> Group:
    """`launch status RUN`: facts as `key  value` lines (never wrapped, so paths and the
    `wandb sync` command can be copied), the tasks, and the log tail of a failed run."""
    facts = [("run", row.run_id), ("state", row.state)]
    if row.note:
        facts.append(("why", row.note))
    error = last_error_line(Path(row.run_dir)) if row.state in ("failed", "timeout") else None
    if error:
        facts.append(("error", error))
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
    facts += overrides_facts(Path(row.run_dir))  # launcher/sweep_spec.py: the --set overrides, the sweep
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
    from launcher.chain import chain_lines  # the run's --then chain, when it has one

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
