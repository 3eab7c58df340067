"""Which entries `launch status` shows, found through the registry's indexes (launcher.runs.pages):
the default page (the last LAST entries), a filtered one, and `--all`, printed as it is read.

The verb refreshes `Page.unfinished()` (or `all_unfinished`) first; nothing here asks a scheduler.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from launcher.runs import pages
from launcher.runs.state import RunState
from launcher.views.status import (
    HEADER,
    LAST,
    Entry,
    Filters,
    Segments,
    StatusReport,
    _fit,
    age,
    as_plain,
    as_text,
    count_text,
    facts,
    group_summary,
    report,
    run_cells,
    run_segments,
    summary_segments,
)

if TYPE_CHECKING:
    from rich.console import Console

    from launcher.runs.registry import Registry, RunRow


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

    def report(self) -> StatusReport:
        chosen = []
        for key, rows in pages.rows_of(self.registry, self._keys(True), self.expand).items():
            head = next((r for r in rows if r.run_id == key), None)
            if head is not None:
                chosen.append(Entry(head, members=[r for r in rows if r is not head]))
            elif rows:
                chosen.append(Entry(None, group=key, members=rows))
        return report(self.registry, chosen, self.registry.count())


def collect(registry: Registry, filters: Filters, expand: bool) -> StatusReport:
    """The whole `launch status` answer from the registry as it stands (refreshed first)."""
    return Page(registry, filters, expand).report()


def all_unfinished(registry: Registry, filters: Filters) -> list[RunRow]:
    """What the verb refreshes before `print_all`."""
    return pages.unfinished(registry, filters.where(), expand=True)


def print_all(registry: Registry, filters: Filters, out: Console) -> None:
    """`launch status --all` as a table, printed a chunk of runs at a time (the first lines come
    before the last row is read). Column widths come from the registry first; an ended run's facts
    from its cache. Without colours (a file or a pipe) the lines are written as plain text."""
    where = filters.where()
    w = pages.widths(registry, where)
    oldest = len(age(w.oldest, suffix="")) if w.oldest else 0
    widths = [max(3, w.run_id), max(5, w.state), max(7, w.cluster), max(3, oldest), max(3, w.job)]
    width = out.width
    room = width - sum(n + 2 for n in widths)
    styled = out.is_terminal or out.color_system is not None

    def emit(lines: list[Segments]) -> None:
        if styled:
            from rich.console import Group

            out.print(Group(*(as_text(line) for line in lines)), crop=False)
        else:
            sys.stdout.write("".join(as_plain(line, width) + "\n" for line in lines))
            sys.stdout.flush()

    emit([[(count_text(w.shown, registry.count()), "bold")],
          run_segments(HEADER, widths, room, ["bold underline"] * len(HEADER))])  # fmt: skip
    for item in pages.stream(registry, where):
        if isinstance(item, str):
            members = registry.rows_where("grp = ?", (item,))
            emit([[(_fit(group_summary(registry, item, members), width), "bold")]])
            continue
        emit(
            [
                line
                for row, data in _with_facts(registry, item)
                for line in _run_lines(row, data, widths, room, width)
            ]
        )


def _with_facts(registry: Registry, rows: list[RunRow]) -> list[tuple[RunRow, dict[str, Any]]]:
    known = facts(registry, rows)
    return [(row, known[row.run_id]) for row in rows]


def _run_lines(row: RunRow, data: dict[str, Any], widths: list[int], room: int, width: int) -> list[Segments]:
    styles = ["", RunState.style_of(row.state), "", "", "", "dim"]
    lines = [run_segments(run_cells(row, data.get("wandb")), widths, room, styles)]
    return lines + summary_segments(data.get("summary") or [], data.get("error"), width)
