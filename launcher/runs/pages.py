"""Pages of the registry for `launch status`: which entries (a run with its evaluations, a sweep's
points as one group) to show, found through the registry's indexes, never by reading every row.

An entry's key is a row's `entry` column when evaluations collapse under their run, and
`COALESCE(grp, run_id)` with `--all` (every run its own line, a sweep's points still one group).
Entries are ordered by (their newest row's created_at, key), as the table lists them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from launcher.runs.registry import BATCH, COLUMNS, Registry, RunRow
from launcher.runs.state import RunState

COLLAPSED = "entry"
EXPANDED = "COALESCE(grp, run_id)"

UNFINISHED = tuple(s.value for s in RunState if not s.is_terminal and s != RunState.SUBMITTING)
"""States a refresh asks a scheduler about."""


def since_text(when: datetime) -> str:
    """`when` as the registry writes created_at (UTC, whole seconds, rounded up), so that
    comparing the strings compares the times."""
    when = when.astimezone(UTC)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when.isoformat(timespec="seconds")


@dataclass
class Where:
    """The row filters of `launch status`, as SQL over `runs`."""

    recipe: str | None = None
    since: datetime | None = None
    states: set[str] = field(default_factory=set)

    def sql(self, with_states: bool = True) -> tuple[str, list[object]]:
        parts: list[str] = ["1"]
        args: list[object] = []
        if self.recipe is not None:
            parts.append("recipe = ?")
            args.append(self.recipe)
        if self.since is not None:
            parts.append("created_at >= ?")
            args.append(since_text(self.since))
        if with_states and self.states:
            parts.append(f"state IN ({','.join('?' * len(self.states))})")
            args.extend(sorted(self.states))
        return " AND ".join(parts), args


def recent(registry: Registry, limit: int, since: datetime | None = None) -> list[str]:
    """The newest `limit` collapsed entries, newest first: a walk down the created_at index that
    stops as soon as it has them (and at `since`)."""
    cond, args = ("AND created_at >= ?", [since_text(since)]) if since else ("", [])
    cursor = registry.query(
        f"SELECT entry FROM runs WHERE entry IS NOT NULL {cond} ORDER BY created_at DESC, entry DESC", args
    )
    keys: list[str] = []
    seen: set[str] = set()
    for (key,) in cursor:
        if key not in seen:
            seen.add(key)
            keys.append(key)
            if len(keys) == limit:
                break
    cursor.close()
    return keys


def matching(registry: Registry, where: Where, expand: bool, with_states: bool = True) -> list[str]:
    """Every entry with a row that passes `where`, oldest first (by its newest row, then key)."""
    key = EXPANDED if expand else COLLAPSED
    cond, args = where.sql(with_states)
    found = registry.query(
        f"SELECT {key} AS k, MAX(created_at) AS latest, MAX({cond}) AS hit FROM runs WHERE {key} IS NOT NULL"
        " GROUP BY k HAVING hit ORDER BY latest, k",
        args,
    )
    return [r[0] for r in found]


def rows_of(registry: Registry, keys: Sequence[str], expand: bool) -> dict[str, list[RunRow]]:
    """Entry key -> its rows, oldest first; a collapsed entry's evaluations and a group's points
    without their jobs (the table counts them only)."""
    key = EXPANDED if expand else COLLAPSED
    out: dict[str, list[RunRow]] = {k: [] for k in keys}
    keys = list(keys)
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        marks = ",".join("?" * len(chunk))
        if expand:
            where, args = f"(run_id IN ({marks}) AND grp IS NULL) OR grp IN ({marks})", chunk + chunk
        else:
            where, args = f"entry IN ({marks})", chunk
        found = registry.query(
            f"SELECT {key}, {COLUMNS} FROM runs WHERE {where} ORDER BY created_at, run_id", args
        ).fetchall()
        rows = [RunRow(*r[1:]) for r in found]
        registry.with_jobs([row for r, row in zip(found, rows, strict=True) if row.run_id == r[0] or expand])
        for r, row in zip(found, rows, strict=True):
            out[r[0]].append(row)
    return out


def unfinished(registry: Registry, where: Where, expand: bool) -> list[RunRow]:
    """The rows a refresh asks about before a filtered or --all page: every unfinished row of an
    entry with a row that passes `where` (its states left out: they are what the refresh reads)."""
    key = EXPANDED if expand else COLLAPSED
    cond, args = where.sql(with_states=False)
    states = ",".join("?" * len(UNFINISHED))
    return registry.rows_where(
        f"state IN ({states}) AND {key} IN (SELECT {key} FROM runs WHERE {cond})", [*UNFINISHED, *args]
    )


def unfinished_of(registry: Registry, keys: Sequence[str]) -> list[RunRow]:
    """The unfinished rows of those collapsed entries."""
    states = ",".join("?" * len(UNFINISHED))
    return registry.rows_where(
        f"state IN ({states}) AND entry IN ({','.join('?' * len(keys))})", [*UNFINISHED, *keys]
    )


@dataclass
class Widths:
    """What the --all table needs before its first line: the widest cells and the counts."""

    run_id: int
    state: int
    cluster: int
    oldest: str | None
    job: int
    shown: int


def widths(registry: Registry, where: Where) -> Widths:
    """Column widths of the single runs `stream` will list, and how many runs it shows."""
    cond, args = where.sql()
    single = f"grp IS NULL AND {cond}"
    r = registry.query(
        f"SELECT MAX(length(run_id)), MAX(length(state)), MAX(length(cluster)), MIN(created_at), COUNT(*)"
        f" FROM runs WHERE {single}",
        args,
    ).fetchone()
    one = registry.query(  # a run's job ids are its tasks 0..n-1: one job, or "n tasks"
        "SELECT MAX(length(CASE WHEN instr(j.job_id, '@') > 0"
        " THEN substr(j.job_id, 1, instr(j.job_id, '@') - 1) ELSE j.job_id END))"
        f" FROM (SELECT run_id FROM runs WHERE {single}) r"
        " JOIN jobs j ON j.run_id = r.run_id AND j.task = 0"
        " WHERE NOT EXISTS (SELECT 1 FROM jobs k WHERE k.run_id = r.run_id AND k.task = 1)",
        args,
    ).fetchone()[0]
    tasks = registry.query(
        f"SELECT MAX(j.task) + 1 FROM (SELECT run_id FROM runs WHERE {single}) r"
        " JOIN jobs j ON j.run_id = r.run_id WHERE j.task > 0",
        args,
    ).fetchone()[0]
    job = max(one or 0, len(f"{tasks} tasks") if tasks else 0)
    grouped = registry.query(
        f"SELECT SUM(n) FROM (SELECT COUNT(*) AS n, MAX({cond}) AS hit FROM runs WHERE grp IS NOT NULL"
        " GROUP BY grp HAVING hit)",
        args,
    ).fetchone()
    return Widths(r[0] or 0, r[1] or 0, r[2] or 0, r[3], job, (r[4] or 0) + (grouped[0] or 0))


LISTED = ("run_id", "state", "cluster", "created_at", "updated_at", "run_dir")
"""The columns of `runs` that `stream` lists (the table's and the facts stamp's), in this order."""

RUN_ID, STATE, CLUSTER, CREATED, UPDATED, DIR = range(len(LISTED))
JOBS, STAMP, WANDB, SUMMARY, ERROR, HOLDS = range(len(LISTED), len(LISTED) + 6)
"""Where each is in a tuple `stream` lists: the LISTED columns, the run's job ids (joined by \\x1f,
in task order; None: no job), its cached facts' stamp, `wandb`, `summary` (JSON text) and `error`
(None: none cached), and whether they hold without a look at its directory (`Trust`)."""


@dataclass(frozen=True)
class Trust:
    """Cached facts that hold without a look at the run's directory: a stamp that starts with
    `version|state|updated_at|` (the row unchanged since) of a run in one of `states`."""

    version: str
    states: frozenset[str]

    def sql(self) -> tuple[str, list[object]]:
        marks = ",".join("?" * len(self.states))
        head = "? || '|' || runs.state || '|' || runs.updated_at || '|'"
        return (
            f"runs.state IN ({marks}) AND substr(f.stamp, 1, length({head})) = {head}",
            [*sorted(self.states), self.version, self.version],
        )


_LISTED = (
    f"SELECT {', '.join(f'runs.{c}' for c in LISTED)},"
    " CASE WHEN f.run_id IS NULL THEN (SELECT group_concat(job_id, char(31)) FROM jobs"
    " WHERE jobs.run_id = runs.run_id) ELSE f.jobs END,"
    " f.stamp, json_extract(f.data, '$.wandb'), json_extract(f.data, '$.summary'),"
    " json_extract(f.data, '$.error'), {holds} FROM runs LEFT JOIN facts f ON f.run_id = runs.run_id"
)
"""`jobs`' primary key (run_id, task) gives each run's job ids in task order; a run with cached
facts has them there (the registry forgets the facts when its jobs change)."""


def stream(
    registry: Registry, where: Where, trust: Trust | None = None, chunk: int = BATCH
) -> Iterator[list[tuple[Any, ...]] | str]:
    """`--all`'s entries in table order: lists of single runs (at most `chunk` each, read in one
    query with their job ids and cached facts: JOBS, ...; HOLDS by `trust`, 0 without) and, between
    them, the key of each group with a row that passes `where`."""
    cond, args = where.sql()
    groups = [
        (r[1], r[0])
        for r in registry.query(
            f"SELECT grp, MAX(created_at) AS latest, MAX({cond}) AS hit FROM runs WHERE grp IS NOT NULL"
            " GROUP BY grp HAVING hit ORDER BY latest, grp",
            args,
        )
    ]
    holds, held = trust.sql() if trust is not None else ("0", [])
    cursor = registry.query(
        f"{_LISTED.format(holds=holds)} WHERE runs.grp IS NULL AND {cond}"
        " ORDER BY runs.created_at, runs.run_id",
        [*held, *args],
    )
    cursor.row_factory = None  # plain tuples: this reads every run
    g = 0
    while batch := cursor.fetchmany(chunk):
        if g < len(groups) and groups[g] < (batch[-1][CREATED], batch[-1][0]):
            out: list[tuple[Any, ...]] = []
            for r in batch:
                while g < len(groups) and groups[g] < (r[CREATED], r[0]):
                    if out:
                        yield out
                        out = []
                    yield groups[g][1]
                    g += 1
                out.append(r)
            if out:
                yield out
        else:  # no group between these rows
            yield batch
    for _, key in groups[g:]:
        yield key
