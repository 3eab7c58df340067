"""A sweep's points: `launch status SWEEP`, its one-line summary, a point as text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from launcher.runs.cost import hours_text
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.registry import RunRow, SweepRow
from launcher.runs.state import RunState, counts_text

if TYPE_CHECKING:
    from launcher.config.grid import Point


def point_text(point: Point) -> str:
    """`train.lr=1e-05, train.epochs=3`."""
    from launcher.config.grid import value_text  # the grid's yaml and pydantic stay out of `launch status`

    return ", ".join(f"{key}={value_text(value)}" for key, value in point.items())


def point_of(row: RunRow) -> dict[str, Any]:
    """A point run's varied keys, from its launch.json."""
    return LaunchInfo.read(Path(row.run_dir)).sweep_point or {}


def points_table(keys: list[str], rows: list[list[Any]], head: list[str], title: str) -> Table:
    """A rich table: `head` columns, then one column per varied key."""
    table = Table(title=title, title_justify="left")
    for col in [*head, *keys]:
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def sweep_summary(rows: list[RunRow], gpu_hours: dict[str, float | None] | None = None) -> str:
    """`4 points: 2 running, 2 completed` (states in the display order of RunState), and with
    `gpu_hours` (run id: used) `; 3.2 GPU-hours used` (`at least` while some are not known)."""
    n = len(rows)
    states = counts_text(Counter(row.state for row in rows))
    text = f"{n} point{'s' if n != 1 else ''}" + (f": {states}" if states else "")
    if gpu_hours:
        known = [h for h in gpu_hours.values() if h is not None]
        least = "at least " if len(known) < len(rows) else ""
        text += f"; {least}{hours_text(sum(known))} GPU-hours used"
    return text


def sweep_table(
    sweep_row: SweepRow, rows: list[RunRow], gpu_hours: dict[str, float | None] | None = None
) -> Table:
    """`launch status SWEEP`: its points with their state, GPU-hours used (`gpu_hours`: the verb asks
    launcher.runs.service.used_gpu_hours) and the varied keys as columns."""
    from launcher.config.grid import value_text

    cells = []
    used = gpu_hours or {}
    for row in rows:
        point = point_of(row)
        values = [value_text(point[k]) if k in point else "?" for k in sweep_row.keys]
        hours = used.get(row.run_id)
        state = Text(row.state, style=RunState.style_of(row.state))
        cells.append([row.run_id, state, "?" if hours is None else hours_text(hours), *values])
    title = f"sweep {sweep_row.sweep_id}: {sweep_summary(rows, gpu_hours)}"
    return points_table(sweep_row.keys, cells, ["run", "state", "GPU-h"], title)
