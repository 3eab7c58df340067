"""`launch status`' table and its --json shape as plain values: the entries to show, each run's facts
(cached in the registry once it ended), the lines of the table.

Nothing here imports pydantic or rich at the top: the default page of a registry whose runs' facts
are cached is built from the registry alone. `launcher.views.status` holds the pydantic models of
the same shape (StatusReport), the run files' readers (`run_status`, imported only for a run whose
facts are not cached) and the filters.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from launcher.errors import UserError
from launcher.runs import pages
from launcher.runs.state import RunState, counts_text

if TYPE_CHECKING:
    from rich.text import Text

    from launcher.runs.registry import Registry, RunRow

LAST = 50
"""Entries shown without --all."""

FACTS = ("wandb", "uploads_pending", "progress", "best", "error", "summary")
"""RunStatus' fields read from the run's files (cached in the registry once the run ended)."""

FACTS_VERSION = "2"
"""Part of every cache stamp: facts cached by an older launcher (without `gpu_hours`) are read again."""


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


# ---------------------------------------------------------------------------- facts, cached


def failed(state: str) -> bool:
    """A run whose error line is worth showing: failed or timed out."""
    return state in (RunState.FAILED, RunState.TIMEOUT)


def _logs_stamp(run_dir: str) -> str:
    """The name, size and mtime of each `logs/*.err`: a failed run's error line is read from them,
    and a log grows in place."""
    try:
        with os.scandir(os.path.join(run_dir, "logs")) as found:
            logs = sorted((e.name, e.stat()) for e in found if e.name.endswith(".err"))
    except OSError:
        return ""
    return ";".join(f"{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in logs)


def _stamp(row: RunRow) -> str | None:
    return stamp_of(row.state, row.updated_at, row.run_dir)


def stamp_of(state: str, updated_at: str, run_dir: str) -> str | None:
    """What the cached facts of an ended run hold for: its state and row, its directory's mtime
    (launch.json, uploads.json, wandb-sync.json, usage.json are replaced, never edited in place; an
    evaluation's results make its parent's facts stale through the registry), and for a failed run
    its logs. None for a run that has not ended (its facts are read each time)."""
    if state not in _ENDED:
        return None
    try:
        mtime = os.stat(run_dir).st_mtime_ns
    except OSError:
        mtime = 0
    stamp = f"{FACTS_VERSION}|{state}|{updated_at}|{mtime}"
    return f"{stamp}|{_logs_stamp(run_dir)}" if state in _FAILED else stamp


def trust() -> pages.Trust:
    """The cached facts of an ended run that did not fail hold without a look at its directory while
    its row is unchanged (pages.Trust): every writer to such a run's files (an evaluation of it,
    `launch sync`) makes the registry forget them. A failed run's logs are always looked at."""
    return pages.Trust(FACTS_VERSION, _ENDED - _FAILED)


_ENDED = frozenset(s.value for s in RunState if s.is_terminal)
_FAILED = frozenset((RunState.FAILED.value, RunState.TIMEOUT.value))


Reader = Callable[["RunRow"], dict[str, Any]]
"""FACTS of a run (and `gpu_hours`) read from its files: launcher.views.status.read_facts."""


def facts(registry: Registry | None, rows: list[RunRow], read: Reader) -> dict[str, dict[str, Any]]:
    """run id -> FACTS of each row as JSON values, and `gpu_hours` (recorded in usage.json; None
    when not): from the registry's cache when it holds for the run, else `read` from its files
    (and cached when it ended)."""
    stamps = {r.run_id: _stamp(r) for r in rows}
    cached = registry.facts([i for i, s in stamps.items() if s]) if registry is not None else {}
    out: dict[str, dict[str, Any]] = {}
    fresh = []
    for row in rows:
        stamp, hit = stamps[row.run_id], cached.get(row.run_id)
        if stamp and hit and hit[0] == stamp:
            out[row.run_id] = json.loads(hit[1])
            continue
        data = read(row)
        out[row.run_id] = data
        if stamp:
            fresh.append((row.run_id, stamp, json.dumps(data)))
    if registry is not None:
        registry.store_facts(fresh)
    return out


# ---------------------------------------------------------------------------- the --json shape


def evals_of(evals: list[RunRow] | None) -> dict[str, Any] | None:
    if not evals:
        return None
    return {"total": len(evals), "states": dict(Counter(r.state for r in evals))}


def run_entry(row: RunRow, data: dict[str, Any], evals: list[RunRow] | None = None) -> dict[str, Any]:
    """A RunStatus as JSON values (its fields in order) from the row, its FACTS and its evaluations."""
    counted = evals_of(evals)
    summary = list(data.get("summary") or [])
    if counted is not None:
        n = counted["total"]
        summary.append(f"{n} eval{'s' * (n != 1)}: {counts_text(counted['states'])}")
    return {"kind": "run", "run_id": row.run_id, "recipe": row.recipe, "cluster": row.cluster,
            "backend": row.backend, "job": row.job, "state": row.state, "parent": row.parent,
            "created_at": row.created_at, "job_ids": row.job_ids, "run_dir": row.run_dir,
            "wandb": data.get("wandb"), "uploads_pending": data.get("uploads_pending"),
            "progress": data.get("progress"), "best": data.get("best"), "error": data.get("error"),
            "evals": counted, "summary": summary}  # fmt: skip


def group_summary(
    registry: Registry | None,
    group: str,
    rows: list[RunRow],
    gpu_hours: dict[str, float | None] | None = None,
) -> str:
    """One line for the runs under `group`: the sweep's own summary when `group` is a sweep the
    registry knows (`<sweep id>: 4 points: ...`, with the GPU-hours used when some are known),
    else `<group>: N runs: 2 running, 2 completed`."""
    if registry is not None and registry.sweep(group) is not None:
        from launcher.views.sweeps import sweep_summary

        known = gpu_hours and any(h is not None for h in gpu_hours.values())
        return f"{group}: {sweep_summary(rows, gpu_hours if known else None)}"
    states = Counter(r.state for r in rows)
    return f"{group}: {len(rows)} run{'s' * (len(rows) != 1)}: {counts_text(dict(states))}"


def group_entry(registry: Registry | None, group: str, members: list[RunRow], read: Reader) -> dict[str, Any]:
    """A GroupStatus as JSON values; a sweep's GPU-hours from its ended points' (cached) facts."""
    used = None
    if registry is not None and registry.sweep(group) is not None:
        known = facts(registry, [r for r in members if RunState.ended(r.state)], read)
        used = {r.run_id: (known.get(r.run_id) or {}).get("gpu_hours") for r in members}
    return {"kind": "group", "group": group, "total": len(members),
            "states": dict(Counter(r.state for r in members)), "run_ids": [r.run_id for r in members],
            "summary": group_summary(registry, group, members, used)}  # fmt: skip


def report(registry: Registry | None, chosen: list[Entry], registered: int, read: Reader) -> dict[str, Any]:
    """StatusReport as JSON values: the chosen entries, oldest first, and the registry's size."""
    known = facts(registry, [e.row for e in chosen if e.row is not None], read)
    out: list[dict[str, Any]] = []
    for entry in chosen:
        if entry.row is not None:
            out.append(run_entry(entry.row, known[entry.row.run_id], entry.members))
        else:
            out.append(group_entry(registry, entry.group or "", entry.members, read))
    return {"entries": out, "registered": registered}


def json_text(report: dict[str, Any]) -> str:
    """What StatusReport.model_dump_json(indent=2) writes for it (pydantic's own serializer)."""
    from pydantic_core import to_json

    return to_json(report, indent=2, inf_nan_mode="null").decode()


# ---------------------------------------------------------------------------- the table


def age(iso: str, suffix: str = " ago", now: datetime | None = None) -> str:
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}{suffix}"
    return f"{seconds}s{suffix}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else (text[: max(width - 1, 0)] + "…" if width > 0 else "")


def _runs_in(entry: dict[str, Any]) -> int:
    if entry["kind"] == "group":
        return int(entry["total"])
    return 1 + (entry["evals"]["total"] if entry["evals"] else 0)


Segments = list[tuple[str, str]]
"""One line of the table as (text, style) pieces: rich Text on a terminal, plain text elsewhere."""

HEADER = ["run", "state", "cluster", "age", "job", "W&B"]


def job_text(job_ids: list[str]) -> str:
    job = ",".join(j.split("@", 1)[0] for j in job_ids)  # a local PID@START: the PID
    return job if len(job_ids) <= 1 else f"{len(job_ids)} tasks"


def run_cells(
    run_id: str, state: str, cluster: str, created_at: str, job_ids: list[str], wandb: str | None
) -> list[str]:
    return [run_id, state, cluster, age(created_at, suffix=""), job_text(job_ids), wandb or ""]


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
    from rich.text import Text

    text = Text(no_wrap=True, overflow="crop")
    for value, style in segments:
        text.append(value, style=style)
    text.rstrip()
    return text


def as_plain(segments: Segments, width: int) -> str:
    """What rich prints for `as_text(segments)` without colours: stripped, cropped to `width` cells."""
    return plain("".join(value for value, _ in segments), width)


def plain(line: str, width: int) -> str:
    """`line` as rich prints it in a Text without colours: stripped, cropped to `width` cells."""
    line = line.rstrip()
    if line.isascii():
        return line[:width]
    from rich.cells import cell_len, set_cell_size

    return set_cell_size(line, width) if cell_len(line) > width else line


def count_text(shown: int, registered: int) -> str:
    return f"runs ({shown if shown == registered else f'{shown} of {registered}'})"


def table_lines(status: dict[str, Any], width: int) -> list[Segments]:
    """`runs (N)`, then one line per run (run, state, cluster, age, job, W&B: the W&B column is
    cut first, so the state always shows at 80 columns) with its summary indented under it, and
    one line per group. Plain fixed-width text, so nothing is wrapped."""
    runs = [e for e in status["entries"] if e["kind"] == "run"]
    keys = ("run_id", "state", "cluster", "created_at", "job_ids", "wandb")
    cells = [run_cells(*(r[k] for k in keys)) for r in runs]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(HEADER[:-1])]
    room = width - sum(w + 2 for w in widths)
    shown = sum(_runs_in(e) for e in status["entries"])
    lines: list[Segments] = [[(count_text(shown, status["registered"]), "bold")]]
    lines.append(run_segments(HEADER, widths, room, ["bold underline"] * len(HEADER)))
    cells_of = {r["run_id"]: c for r, c in zip(runs, cells, strict=True)}
    for entry in status["entries"]:
        if entry["kind"] == "group":
            lines.append([(_fit(entry["summary"], width), "bold")])
            continue
        styles = ["", RunState.style_of(entry["state"]), "", "", "", "dim"]
        lines.append(run_segments(cells_of[entry["run_id"]], widths, room, styles))
        lines += summary_segments(entry["summary"], entry["error"], width)
    return lines
