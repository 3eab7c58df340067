"""`launch status` without a run: which runs to show, what each one's state means, and the table.

Every fact comes from the registry or a small file of the run directory (progress.json,
results/**/metrics.json, the newest logs/*.err of a failed run); nothing here asks a scheduler:
the verb refreshes the unfinished rows of what will be shown (`unfinished`) first. A run's
evaluations (rows with parent = its run id) collapse under it; rows whose parent is not a run id
(a sweep's points) collapse into one line for that parent.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Group
from rich.text import Text

from launcher.errors import UserError
from launcher.jsonio import read_object
from launcher.runs import pages
from launcher.runs.progress import Progress, progress_line, read_progress
from launcher.runs.registry import RunRow
from launcher.runs.state import RunState, counts_text
from launcher.views.sweeps import sweep_summary

if TYPE_CHECKING:
    from launcher.runs.registry import Registry

LAST = 50
"""Entries shown without --all."""


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


# ---------------------------------------------------------------------------- filters


_SINCE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SINCE_FORMS = "a duration (30m, 2h, 3d, 1w) or an ISO date or time (2026-12-01, 2026-12-01T08:00)"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now or an ISO date/time (UTC unless it names a zone)."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip().lower())
    if match:
        try:
            return now - timedelta(seconds=int(match[1]) * _UNITS[match[2]])
        except OverflowError:
            raise UserError(f"--since: {text} reaches back before the year 1; valid: {SINCE_FORMS}") from None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--since: cannot read '{text}'; valid: {SINCE_FORMS}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


WATCH_MIN_S, WATCH_MAX_S = 1.0, 86400.0
"""`--watch SECONDS`: at least 1 s (every refresh asks the schedulers), at most a day."""


def check_watch(seconds: float) -> float:
    """`--watch`'s interval when it is from WATCH_MIN_S to WATCH_MAX_S; else a UserError (NaN, inf,
    0 and 0.001 included)."""
    if not WATCH_MIN_S <= seconds <= WATCH_MAX_S:
        raise UserError(
            f"--watch: SECONDS must be from {WATCH_MIN_S:g} to {WATCH_MAX_S:g} (a day), got {seconds:g}; "
            "each refresh asks the schedulers"
        )
    return seconds


def parse_states(values: list[str]) -> set[str]:
    """`--state` (repeatable, or comma-separated)."""
    states = {s.strip().lower() for v in values for s in v.split(",") if s.strip()}
    bad = sorted(s for s in states if RunState.of(s) is None)
    if bad:
        raise UserError(f"--state: unknown state '{bad[0]}'; valid: {', '.join(s.value for s in RunState)}")
    return states


@dataclass
class Filters:
    states: set[str] = field(default_factory=set)
    recipe: str | None = None
    since: datetime | None = None

    def when(self, row: RunRow) -> bool:
        """The filters on everything but the state (those that need no scheduler)."""
        if self.recipe is not None and row.recipe != self.recipe:
            return False
        return self.since is None or _created(row) >= self.since

    def matches(self, row: RunRow) -> bool:
        return self.when(row) and (not self.states or row.state in self.states)

    def where(self) -> pages.Where:
        return pages.Where(recipe=self.recipe, since=self.since, states=self.states)


def _created(row: RunRow) -> datetime:
    try:
        when = datetime.fromisoformat(row.created_at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- grouping


@dataclass
class Entry:
    """A run with its evaluations, or a group of runs under a parent that is not a run."""

    row: RunRow | None
    group: str | None = None
    members: list[RunRow] = field(default_factory=list)

    @property
    def rows(self) -> list[RunRow]:
        return ([self.row] if self.row else []) + self.members

    @property
    def latest(self) -> str:
        return max(r.created_at for r in self.rows)


def entries(rows: list[RunRow], expand: bool = False) -> list[Entry]:
    """Runs collapsed: evals under their run (unless `expand`), points of a parent that is no run
    id into one entry per parent; ordered by their newest row."""
    ids = {r.run_id: r for r in rows}
    heads: dict[str, Entry] = {}
    groups: dict[str, Entry] = {}
    loose: list[Entry] = []
    for row in rows:
        if row.parent and row.parent in ids:
            if expand:
                loose.append(Entry(row))
            else:
                heads.setdefault(row.parent, Entry(ids[row.parent])).members.append(row)
        elif row.parent:
            groups.setdefault(row.parent, Entry(None, group=row.parent)).members.append(row)
        else:
            heads.setdefault(row.run_id, Entry(row))
    for run_id in list(heads):
        parent = ids[run_id].parent
        if parent and parent not in ids and parent in groups:
            del heads[run_id]  # a sweep point with evaluations: the point is a line of its sweep
    out = list(heads.values()) + list(groups.values()) + loose
    return sorted(out, key=lambda e: (e.latest, e.row.run_id if e.row else e.group or ""))


# ---------------------------------------------------------------------------- facts of one run


def age(iso: str, suffix: str = " ago") -> str:
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}{suffix}"
    return f"{seconds}s{suffix}"


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


def failed(state: str) -> bool:
    """A run whose error line is worth showing: failed or timed out."""
    return state in (RunState.FAILED, RunState.TIMEOUT)


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


FACTS = ("wandb", "uploads_pending", "progress", "best", "error", "summary")
"""RunStatus' fields read from the run's files (cached in the registry once the run ended)."""


def _stamp(row: RunRow) -> str | None:
    """What the cached facts of an ended run hold for: its state and row, and its directory's
    mtime (launch.json, uploads.json, wandb-sync.json are replaced, never edited in place; an
    evaluation's results make its parent's facts stale through the registry)."""
    if not RunState.ended(row.state) or failed(
        row.state
    ):  # a failed run's error line: its logs, read each time
        return None
    try:
        mtime = os.stat(row.run_dir).st_mtime_ns
    except OSError:
        mtime = 0
    return f"{row.state}|{row.updated_at}|{mtime}"


def facts(registry: Registry | None, rows: list[RunRow]) -> dict[str, dict[str, Any]]:
    """run id -> FACTS of each row as JSON values: from the registry's cache when it holds for
    the run, else read from its files (and cached when it ended)."""
    stamps = {r.run_id: _stamp(r) for r in rows}
    cached = registry.facts([i for i, s in stamps.items() if s]) if registry is not None else {}
    out: dict[str, dict[str, Any]] = {}
    fresh = []
    for row in rows:
        stamp, hit = stamps[row.run_id], cached.get(row.run_id)
        if stamp and hit and hit[0] == stamp:
            out[row.run_id] = json.loads(hit[1])
            continue
        data = run_status(row).model_dump(mode="json", include=set(FACTS))
        out[row.run_id] = data
        if stamp:
            fresh.append((row.run_id, stamp, json.dumps(data)))
    if registry is not None:
        registry.store_facts(fresh)
    return out


def with_facts(row: RunRow, data: dict[str, Any], evals: list[RunRow] | None = None) -> RunStatus:
    """A RunStatus from the row, its FACTS and its evaluations."""
    counted = Evals(total=len(evals), states=dict(Counter(r.state for r in evals))) if evals else None
    summary = list(data.get("summary") or [])
    if counted is not None:
        summary.append(f"{counted.total} eval{'s' * (counted.total != 1)}: {counts_text(counted.states)}")
    return RunStatus.model_validate(
        {**data, **_row_fields(row), "evals": counted and counted.model_dump(), "summary": summary}
    )


def _row_fields(row: RunRow) -> dict[str, Any]:
    return {"run_id": row.run_id, "recipe": row.recipe, "cluster": row.cluster, "backend": row.backend,
            "job": row.job, "state": row.state, "parent": row.parent, "created_at": row.created_at,
            "job_ids": row.job_ids, "run_dir": row.run_dir}  # fmt: skip


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


def group_summary(registry: Registry | None, group: str, rows: list[RunRow]) -> str:
    """One line for the runs under `group`: the sweep's own summary when `group` is a sweep the
    registry knows (`<sweep id>: 4 points: ...`), else `<group>: N runs: 2 running, 2 completed`."""
    if registry is not None and registry.sweep(group) is not None:
        return f"{group}: {sweep_summary(rows)}"
    states = Counter(r.state for r in rows)
    return f"{group}: {len(rows)} run{'s' * (len(rows) != 1)}: {counts_text(dict(states))}"


def report(registry: Registry | None, chosen: list[Entry], registered: int) -> StatusReport:
    known = facts(registry, [e.row for e in chosen if e.row is not None])
    out: list[RunStatus | GroupStatus] = []
    for entry in chosen:
        if entry.row is not None:
            out.append(with_facts(entry.row, known[entry.row.run_id], entry.members))
            continue
        group = entry.group or ""
        out.append(
            GroupStatus(
                group=group,
                total=len(entry.members),
                states=dict(Counter(r.state for r in entry.members)),
                run_ids=[r.run_id for r in entry.members],
                summary=group_summary(registry, group, entry.members),
            )
        )
    return StatusReport(entries=out, registered=registered)


# ---------------------------------------------------------------------------- the table


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else (text[: max(width - 1, 0)] + "…" if width > 0 else "")


def _runs_in(entry: RunStatus | GroupStatus) -> int:
    if isinstance(entry, GroupStatus):
        return entry.total
    return 1 + (entry.evals.total if entry.evals else 0)


Segments = list[tuple[str, str]]
"""One line of the table as (text, style) pieces: rich Text on a terminal, plain text elsewhere."""

HEADER = ["run", "state", "cluster", "age", "job", "W&B"]


def job_text(job_ids: list[str]) -> str:
    job = ",".join(j.split("@", 1)[0] for j in job_ids)  # a local PID@START: the PID
    return job if len(job_ids) <= 1 else f"{len(job_ids)} tasks"


def run_cells(r: RunStatus | RunRow, wandb: str | None) -> list[str]:
    return [r.run_id, r.state, r.cluster, age(r.created_at, suffix=""), job_text(r.job_ids), wandb or ""]


def run_segments(cells: list[str], widths: list[int], room: int, styles: list[str]) -> Segments:
    """A run's line (or the header): the columns padded to `widths`, W&B cut to `room` (or left
    out below 4 characters)."""
    out = []
    for i, (value, style) in enumerate(zip(cells, styles, strict=True)):
        if i < len(widths):
            out.append((value.ljust(widths[i]) + "  ", style))
        elif room >= 4:
            out.append((_fit(value, room), style))
    return out


def summary_segments(summary: list[str], error: str | None, width: int) -> list[Segments]:
    """The lines under a run: its error first (red), the rest dim."""
    return [
        [(_fit("  " + text, width), "red" if error and i == 0 else "dim")] for i, text in enumerate(summary)
    ]


def as_text(segments: Segments) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for value, style in segments:
        text.append(value, style=style)
    text.rstrip()
    return text


def as_plain(segments: Segments, width: int) -> str:
    """What rich prints for `as_text(segments)` without colours: stripped, cropped to `width` cells."""
    line = "".join(value for value, _ in segments).rstrip()
    if line.isascii():
        return line[:width]
    from rich.cells import cell_len, set_cell_size

    return set_cell_size(line, width) if cell_len(line) > width else line


def count_text(shown: int, registered: int) -> str:
    return f"runs ({shown if shown == registered else f'{shown} of {registered}'})"


def table(status: StatusReport, width: int) -> Group:
    """`runs (N)`, then one line per run (run, state, cluster, age, job, W&B: the W&B column is
    cut first, so the state always shows at 80 columns) with its summary indented under it, and
    one line per group. Plain fixed-width text, so nothing is wrapped."""

    runs = [e for e in status.entries if isinstance(e, RunStatus)]
    cells = [run_cells(r, r.wandb) for r in runs]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(HEADER[:-1])]
    room = width - sum(w + 2 for w in widths)
    shown = sum(_runs_in(e) for e in status.entries)
    lines: list[Segments] = [[(count_text(shown, status.registered), "bold")]]
    lines.append(run_segments(HEADER, widths, room, ["bold underline"] * len(HEADER)))
    cells_of = {r.run_id: c for r, c in zip(runs, cells, strict=True)}
    for entry in status.entries:
        if isinstance(entry, GroupStatus):
            lines.append([(_fit(entry.summary, width), "bold")])
            continue
        styles = ["", RunState.style_of(entry.state), "", "", "", "dim"]
        lines.append(run_segments(cells_of[entry.run_id], widths, room, styles))
        lines += summary_segments(entry.summary, entry.error, width)
    return Group(*(as_text(line) for line in lines))
