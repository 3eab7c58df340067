"""Which entries `launch status` shows, found through the registry's indexes (launcher.runs.pages):
the default page (the last LAST entries), a filtered one, and `--all`, printed as it is read.

The verb refreshes `Page.unfinished()` (or `all_unfinished`) first; nothing here asks a scheduler.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from launcher.runs import pages
from launcher.runs.state import RunState
from launcher.views.status_table import (
    HEADER,
    LAST,
    Entry,
    Filters,
    Segments,
    _fit,
    age,
    as_plain,
    as_text,
    count_text,
    facts,
    group_entry,
    plain,
    report,
    run_cells,
    run_segments,
    stamp_of,
    summary_segments,
    trust,
)

if TYPE_CHECKING:
    from rich.console import Console

    from launcher.runs.registry import Registry, RunRow
    from launcher.views.status import StatusReport


@dataclass
class Page:
    """What `launch status` shows (the table of the last entries, or --json): `unfinished()` for
    the verb to refresh, then `report()`."""

    registry: Registry
    filters: Filters
    expand: bool

    def _keys(self, with_states: bool) -> list[str]:
        f = self.filters
        if not self.expand and f.recipe is None and not (with_states and f.states):
            return pages.recent(self.registry, LAST, f.since)[::-1]
        keys = pages.matching(self.registry, f.where(), self.expand, with_states)
        return keys if self.expand else keys[-LAST:]

    def unfinished(self) -> list[RunRow]:
        """The rows of the entries to show that have not ended (and are past submitting); with a
        state filter or --all, those of every entry that passes the other filters."""
        if self.expand or self.filters.states:
            return pages.unfinished(self.registry, self.filters.where(), self.expand)
        keys = self._keys(False)
        return pages.unfinished_of(self.registry, keys) if keys else []

    def plain(self) -> dict[str, Any]:
        """The --json shape as JSON values (launcher.views.status_table.report)."""
        chosen = []
        for key, rows in pages.rows_of(self.registry, self._keys(True), self.expand).items():
            head = next((r for r in rows if r.run_id == key), None)
            if head is not None:
                chosen.append(Entry(head, members=[r for r in rows if r is not head]))
            elif rows:
                chosen.append(Entry(None, group=key, members=rows))
        return report(self.registry, chosen, self.registry.count(), _read)

    def report(self) -> StatusReport:
        from launcher.views.status import StatusReport

        return StatusReport.model_validate(self.plain())


def collect(registry: Registry, filters: Filters, expand: bool) -> StatusReport:
    """The whole `launch status` answer from the registry as it stands (refreshed first)."""
    return Page(registry, filters, expand).report()


def all_unfinished(registry: Registry, filters: Filters) -> list[RunRow]:
    """What the verb refreshes before `print_all`."""
    return pages.unfinished(registry, filters.where(), expand=True)


def print_all(
    registry: Registry, filters: Filters, out: Console | None, width: int = 80, fresh: bool = False
) -> None:
    """`launch status --all` as a table, printed a chunk of runs at a time (the first lines come
    before the last row is read). Column widths come from the registry first; an ended run's facts
    from its cache. `out`: rich's console on a terminal; None: plain text lines, `width` wide (a
    file or a pipe)."""
    where = filters.where()
    w = pages.widths(registry, where)
    oldest = len(age(w.oldest, suffix="")) if w.oldest else 0
    widths = [max(3, w.run_id), max(5, w.state), max(7, w.cluster), max(3, oldest), max(3, w.job)]
    width = out.width if out is not None else width
    room = width - sum(n + 2 for n in widths)

    def emit(lines: list[Segments]) -> None:
        if out is not None:
            from rich.console import Group

            out.print(Group(*(as_text(line) for line in lines)), crop=False)
        else:
            sys.stdout.write("".join(as_plain(line, width) + "\n" for line in lines))
            sys.stdout.flush()

    emit([[(count_text(w.shown, registry.count()), "bold")],
          run_segments(HEADER, widths, room, ["bold underline"] * len(HEADER))])  # fmt: skip
    for item in pages.stream(registry, where, None if fresh else trust()):
        if isinstance(item, str):
            members = registry.rows_where("grp = ?", (item,))
            emit([[(_fit(group_entry(registry, item, members, _read)["summary"], width), "bold")]])
            continue
        shown = _shown(registry, item)
        if out is None:  # the same lines, made straight as text: this loop runs for every run
            sys.stdout.write(_plain_lines(item, shown, widths, room, width))
            sys.stdout.flush()
        else:
            emit(
                [
                    line
                    for x, facts_ in zip(item, shown, strict=True)
                    for line in _run_lines(x, *facts_, widths, room, width)
                ]
            )


def _read(row: RunRow) -> dict[str, Any]:
    """A run's facts from its files (pydantic and the readers imported only for such a run)."""
    from launcher.views.status import read_facts

    return read_facts(row)


Shown = tuple[str | None, list[str], str | None]
"""What the --all table shows of a run's facts: its W&B text, summary lines and error."""


def _shown(registry: Registry, listed: list[tuple[Any, ...]]) -> list[Shown]:
    """Each run's Shown: from the facts the query read when they hold (HOLDS: status_table's
    `trust`, off with --fresh; else its stamp, its directory looked at, unchanged), else from `facts`
    (which reads the run's files, and caches them once it ended)."""
    out: list[Shown | None] = []
    missed: dict[int, str] = {}
    state, updated, run_dir, stamp, holds = pages.STATE, pages.UPDATED, pages.DIR, pages.STAMP, pages.HOLDS
    for i, x in enumerate(listed):
        cached = x[stamp]
        if cached is not None and (x[holds] or cached == stamp_of(x[state], x[updated], x[run_dir])):
            summary = x[pages.SUMMARY]
            lines = json.loads(summary) if summary is not None and summary != "[]" else []
            out.append((x[pages.WANDB], lines, x[pages.ERROR]))
        else:
            out.append(None)
            missed[i] = x[pages.RUN_ID]
    if missed:
        rows = registry.rows_where(f"run_id IN ({','.join('?' * len(missed))})", list(missed.values()))
        known = facts(registry, rows, _read)
        for i, run_id in missed.items():
            data = known[run_id]
            out[i] = (data.get("wandb"), list(data.get("summary") or []), data.get("error"))
    return [shown for shown in out if shown is not None]


def _job_text(jobs: str | None) -> str:
    """job_text of `stream`'s joined job ids."""
    if jobs is None:
        return ""
    return jobs.split("@", 1)[0] if "\x1f" not in jobs else f"{jobs.count(chr(31)) + 1} tasks"


def _plain_lines(
    listed: list[tuple[Any, ...]], shown: list[Shown], widths: list[int], room: int, width: int
) -> str:
    """What `as_plain` makes of each run's `_run_lines`: a line per run and per summary line."""
    now = datetime.now(UTC)
    w0, w1, w2, w3, w4 = widths
    state, created, jobs = pages.STATE, pages.CREATED, pages.JOBS
    text = []
    when, last = "", None
    for x, (wandb, summary, _) in zip(listed, shown, strict=True):
        if x[created] != last:  # a sweep's or a reeval's runs share their second
            last = x[created]
            when = age(last, "", now)
        job = _job_text(x[jobs])
        line = f"{x[0]:<{w0}}  {x[state]:<{w1}}  {x[2]:<{w2}}  {when:<{w3}}  {job:<{w4}}  "
        if room >= 4:
            line += _fit(wandb or "", room)
        text.append(plain(line, width))
        text.extend(plain(_fit("  " + one, width), width) for one in summary)
    return "\n".join(text) + "\n" if text else ""


def _run_lines(
    x: tuple[Any, ...], wandb: str | None, summary: list[str], error: str | None,
    widths: list[int], room: int, width: int,
) -> list[Segments]:  # fmt: skip
    state = x[pages.STATE]
    styles = ["", RunState.style_of(state), "", "", "", "dim"]
    cells = run_cells(x[0], state, x[2], x[pages.CREATED], _job_ids(x[pages.JOBS]), wandb)
    return [run_segments(cells, widths, room, styles), *summary_segments(summary, error, width)]


def _job_ids(jobs: str | None) -> list[str]:
    return jobs.split("\x1f") if jobs is not None else []
