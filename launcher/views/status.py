"""`launch status` without a run: the --json shape as pydantic models, and each run's facts read
from its files (the table, the filters and the cached facts: launcher.views.status_table).

Every fact comes from the registry or a small file of the run directory (progress.json,
results/**/metrics.json, the newest logs/*.err of a failed run); nothing here asks a scheduler:
the verb refreshes the unfinished rows of what will be shown (`unfinished`) first. A run's
evaluations (rows with parent = its run id) collapse under it; rows whose parent is not a run id
(a sweep's points) collapse into one line for that parent.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from launcher.jsonio import read_object
from launcher.runs.cost import recorded
from launcher.runs.progress import Progress, progress_line, read_progress
from launcher.runs.registry import RunRow
from launcher.runs.state import RunState, counts_text
from launcher.views import status_table
from launcher.views.status_table import (  # noqa: F401 - the names callers import from here
    FACTS,
    HEADER,
    LAST,
    SINCE_FORMS,
    WATCH_MAX_S,
    WATCH_MIN_S,
    Entry,
    Filters,
    Segments,
    age,
    as_plain,
    as_text,
    check_watch,
    count_text,
    entries,
    failed,
    group_summary,
    job_text,
    parse_since,
    parse_states,
    run_segments,
    summary_segments,
)

if TYPE_CHECKING:
    from rich.console import Group

    from launcher.runs.registry import Registry


# ---------------------------------------------------------------------------- the --json shape


class Best(BaseModel):
    """The best strict entity F1 among a run's results."""

    model_config = ConfigDict(extra="forbid")
    f1: float
    checkpoint: str = Field(description="the results/<checkpoint> directory name")
    eval_recipe: str | None = Field(None, description="results/<checkpoint>/<eval recipe>/ (new layout)")
    step: int | None = None


class Evals(BaseModel):
    """A run's evaluation runs, counted by state."""

    model_config = ConfigDict(extra="forbid")
    total: int
    states: dict[str, int]


class RunStatus(BaseModel):
    """One run (`kind: run`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["run"] = "run"
    run_id: str
    recipe: str
    cluster: str
    backend: str
    job: str
    state: str
    parent: str | None
    created_at: str
    job_ids: list[str]
    run_dir: str
    wandb: str | None = Field(None, description="W&B URL, or `offline` for an offline run")
    uploads_pending: int | None = Field(None, description="units not yet in the artifact store")
    progress: Progress | None = Field(None, description="progress.json of a training or evaluation run")
    best: Best | None = None
    error: str | None = Field(None, description="last error line of a failed run's stderr")
    evals: Evals | None = Field(None, description="its evaluation runs (listed as runs too with --all)")
    summary: list[str] = Field(description="the lines the table shows under the run")


class GroupStatus(BaseModel):
    """Runs sharing a parent that is not a run id (a sweep's points), as one line (`kind: group`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["group"] = "group"
    group: str
    total: int
    states: dict[str, int]
    run_ids: list[str]
    summary: str


class StatusReport(BaseModel):
    """`launch status --json`: the entries the table shows, oldest first."""

    model_config = ConfigDict(extra="forbid")
    entries: list[Annotated[RunStatus | GroupStatus, Field(discriminator="kind")]]
    registered: int = Field(description="runs in the registry")


# ---------------------------------------------------------------------------- facts of one run


def wandb_text(run_dir: Path, short: bool = False) -> str:
    """The run's W&B URL, or for an offline run the `wandb sync` command (`offline` if short)."""
    from launcher.runs.launch_info import LaunchInfo  # pydantic's model: only for a run's facts

    wandb = LaunchInfo.read(run_dir).wandb
    if wandb.get("url"):
        return str(wandb["url"])
    if wandb.get("offline_dir"):
        return "offline" if short else f"offline: wandb sync {wandb['offline_dir']}"
    return ""


_ERROR_LINE = re.compile(
    r"^([\w.]+\.)?[A-Z]\w*(Error|Exception|Exit|Interrupt)\b"  # a Python exception: `OSError: ...`
    r"|^(\S+: )?(error|fatal)\b",  # `error: ...`, `slurmstepd: error: ...`
    re.IGNORECASE,
)


_SCHEDULER_LINE = re.compile(r"^(srun|slurmstepd|sbatch|\[launch\])\S*:? ")


_VERDICT = re.compile(r"^\[launch\] error: |^srun: error: Node failure on ")
"""The launcher's own diagnosis (a rendezvous that cannot form) and Slurm's verdict on a lost node:
what ended the run, whatever the job's processes printed as they died."""


_NOISE = re.compile(
    r"^(Traceback \(most recent call last\)|During handling of the above|The above exception"
    r"|File \"|[\^~\s]+$|warnings\.warn\()"
)
"""A traceback's frames and carets, and the source line a warning quotes: never the reason."""

TAIL_BYTES = 64 * 1024
"""Only the end of a log is read: a long run's stderr can be large, `launch status` stays cheap."""


def _tail_lines(log: Path) -> list[str]:
    with open(log, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(size - TAIL_BYTES, 0))
        text = fh.read().decode("utf-8", errors="replace")
    lines = text.splitlines()[1:] if size > TAIL_BYTES else text.splitlines()  # the first is cut
    return [line.strip() for line in lines if line.strip() and not _NOISE.match(line.strip())]


def last_error_line(run_dir: Path) -> str | None:
    """Why a run failed, from its newest `logs/*.err` (every backend writes its stderr there): the
    job's last line that reads as an error (`ValueError: ...`, `error: ...`), else its last line
    that is not a traceback's frame; the scheduler's own lines (`srun: error: task 0: Exited ...`)
    only when the job wrote none. A verdict (`srun: error: Node failure on dev-n2`, `[launch] error:
    rendezvous: ...`) comes before all. Reads the last TAIL_BYTES of the log."""
    logs = sorted(Path(run_dir, "logs").glob("*.err"), key=lambda p: p.stat().st_mtime, reverse=True)
    for log in logs:
        try:
            lines = _tail_lines(log)
        except OSError:
            continue
        verdicts = [line for line in lines if _VERDICT.match(line)]
        if verdicts:
            return verdicts[-1].removeprefix("[launch] error: ")
        for candidates in ([line for line in lines if not _SCHEDULER_LINE.match(line)], lines):
            if candidates:
                errors = [line for line in candidates if _ERROR_LINE.match(line)]
                return (errors or candidates)[-1]
    return None


def best_result(run_dir: Path) -> Best | None:
    """The best strict F1 over `results/**/metrics.json` (old `results/<ckpt>/metrics.json` and
    new `results/<ckpt>/<eval recipe>/metrics.json`)."""
    best: Best | None = None
    results = run_dir / "results"
    if not results.is_dir():
        return None
    for path in results.glob("**/metrics.json"):
        metrics = read_object(path)
        strict = (metrics or {}).get("strict")
        f1 = strict.get("f1") if isinstance(strict, dict) else None
        if not isinstance(f1, (int, float)) or isinstance(f1, bool):
            continue
        parts = path.relative_to(results).parts
        step = metrics.get("step") if metrics else None
        candidate = Best(
            f1=float(f1),
            checkpoint=parts[0],
            eval_recipe=parts[1] if len(parts) > 2 else None,
            step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        )
        if best is None or candidate.f1 > best.f1:
            best = candidate
    return best


def progress_text(p: Progress, state: str) -> str:
    """`step 120/318  loss 1.234  412 tok/s  ETA 1m12s` (no ETA once the run ended)."""
    return progress_line(p, lr=False, eta=not RunState.ended(state))


def best_text(best: Best) -> str:
    where = best.checkpoint + (f" ({best.eval_recipe})" if best.eval_recipe else "")
    return f"best F1 {best.f1:.4f} at {where}"


def run_status(row: RunRow, evals: list[RunRow] | None = None) -> RunStatus:
    """What the table and --json say about one run; reads only small files of its directory (and
    imports the upload and W&B-sync code only for a run that has their files)."""
    from launcher.artifacts import LEDGER
    from launcher.tracking import STATE_FILE

    run_dir = Path(row.run_dir)
    progress = read_progress(run_dir)
    best = best_result(run_dir)
    error = last_error_line(run_dir) if failed(row.state) else None
    wandb = wandb_text(run_dir, short=True) or None
    pending = None
    ended = RunState.ended(row.state)
    if (run_dir / LEDGER).is_file() or (not ended and (run_dir / "recipe.yaml").is_file()):
        from launcher.artifacts.uploads import upload_state

        uploads = upload_state(run_dir)
        pending = len(uploads.pending) if uploads.uri else None
    counted = Evals(total=len(evals), states=dict(Counter(r.state for r in evals))) if evals else None
    lines = []
    if error:
        lines.append(f"error: {error}")
    elif progress is not None and (not ended or best is None):
        lines.append(progress_text(progress, row.state))
    if best is not None:
        lines.append(best_text(best))
    if pending:
        lines.append(f"uploads: {pending} pending")
    if (run_dir / STATE_FILE).is_file():
        from launcher.tracking.wandb_sync import not_synced

        if unsynced := not_synced(run_dir):
            lines.append(f"W&B not synced: {unsynced}")
    if counted is not None:
        lines.append(f"{counted.total} eval{'s' * (counted.total != 1)}: {counts_text(counted.states)}")
    return RunStatus(
        run_id=row.run_id, recipe=row.recipe, cluster=row.cluster, backend=row.backend, job=row.job,
        state=row.state, parent=row.parent, created_at=row.created_at, job_ids=row.job_ids,
        run_dir=row.run_dir, wandb=wandb, uploads_pending=pending, progress=progress, best=best,
        error=error, evals=counted, summary=lines,
    )  # fmt: skip


def with_facts(row: RunRow, data: dict[str, object], evals: list[RunRow] | None = None) -> RunStatus:
    """A RunStatus from the row, its FACTS and its evaluations."""
    return RunStatus.model_validate(status_table.run_entry(row, data, evals))


def read_facts(row: RunRow) -> dict[str, object]:
    """FACTS of a run read from its files, and the GPU-hours recorded in its usage.json."""
    data = run_status(row).model_dump(mode="json", include=set(FACTS))
    return {**data, "gpu_hours": recorded(Path(row.run_dir))}


def facts(registry: Registry | None, rows: list[RunRow]) -> dict[str, dict[str, object]]:
    """launcher.views.status_table.facts, read with `read_facts`."""
    return status_table.facts(registry, rows, read_facts)


def report(registry: Registry | None, chosen: list[Entry], registered: int) -> StatusReport:
    """The chosen entries as the --json shape (launcher.views.status_table.report, validated)."""
    return StatusReport.model_validate(status_table.report(registry, chosen, registered, read_facts))


def table(status: StatusReport, width: int) -> Group:
    """The table (launcher.views.status_table.table_lines) as rich Text lines."""
    from rich.console import Group

    lines = status_table.table_lines(status.model_dump(mode="json"), width)
    return Group(*(as_text(line) for line in lines))
