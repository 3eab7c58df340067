"""Verbs that look at runs or stop them: status, logs, cancel (of a run or of a sweep's points)."""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from launcher.cli.common import app, console, plain_width, spinner, wide_console
from launcher.errors import require_nonempty

if TYPE_CHECKING:
    from rich.console import Group

    from launcher.runs.registry import Registry, RunRow
    from launcher.views.status_table import Segments


@app.command("status")
def status_cmd(
    run: Annotated[Optional[str], typer.Argument(help="run id (or a unique prefix)")] = None,  # noqa: UP045
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="every run, evaluations listed, not the last 50")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="print the status as JSON (shape: README)")] = False,
    watch: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--watch",
            "-w",
            metavar="[SECONDS]",
            is_flag=False,
            flag_value=2.0,
            help="refresh in place every SECONDS (default 2, at least 1, at most 86400); Ctrl-C stops",
        ),
    ] = None,
    state: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--state", help="only runs in this state (repeatable or comma-separated)"),
    ] = None,
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="only runs of this recipe")] = None,  # noqa: UP045
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--since", help="only runs created since: 2h, 3d, 1w or an ISO date"),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="ask the schedulers now, not the answer shared a moment ago; with --all, also look in"
            " every ended run's directory for changes made outside `launch`",
        ),
    ] = False,
) -> None:
    """Every run with its state, progress, best F1 or error; one run in detail."""
    from launcher.runs.registry import Registry
    from launcher.views import status_table

    if run is not None:
        require_nonempty("RUN", run)
    if watch is not None:
        status_table.check_watch(watch)  # bad input refused before the registry is opened
    if since is not None:
        status_table.parse_since(since)
    registry = Registry()
    if run and _sweep_status(registry, run, fresh):
        return
    if run:
        from launcher.loop import chain
        from launcher.runs import refresh as refreshing
        from launcher.runs import service as launching
        from launcher.runs.find import find_row
        from launcher.views import status as status_view
        from launcher.views.run import run_detail

        row = find_row(registry, run)
        with console(stderr=True).status("Asking the scheduler ..."):
            row = refreshing.refresh(registry, [row], fresh=fresh)[0]
            chained = chain.chain_lines(Path(row.run_dir), row.state)
            used = launching.used_gpu_hours([row])[row.run_id]
        if json_:
            detail = status_view.run_status(row).model_dump(mode="json")
            sys.stdout.write(json.dumps({**detail, "gpu_hours": used}, indent=2) + "\n")
            return
        console().print(run_detail(row, chained, used), crop=False, soft_wrap=True)
        return
    _status_table(registry, all_, json_, watch, state or [], recipe, since, fresh)


def _status_table(
    registry: Registry, all_: bool, json_: bool, watch: float | None, state: list[str],
    recipe: str | None, since: str | None, fresh: bool = False,
) -> None:  # fmt: skip
    from launcher.views import status_pages, status_table

    filters = status_table.Filters(
        states=status_table.parse_states(state),
        recipe=recipe,
        since=status_table.parse_since(since) if since is not None else None,
    )

    def collect() -> dict[str, Any]:  # the schedulers asked first, then the view
        page = status_pages.Page(registry, filters, all_)
        _refresh(registry, page.unfinished(), fresh)
        return page.plain()

    if json_:
        sys.stdout.write(status_table.json_text(collect()) + "\n")
        return
    width = plain_width()
    if watch is None and all_:  # printed as it is read: the first lines before the last row
        with spinner("Asking the schedulers ..."):
            _refresh(registry, status_pages.all_unfinished(registry, filters), fresh)
        status_pages.print_all(registry, filters, console() if width is None else None, width or 80, fresh)
        return
    if watch is None:
        with spinner("Asking the schedulers ..."):
            report = collect()
        if width is not None:  # no terminal: the lines rich would print, without importing it
            lines = status_table.table_lines(report, width)
            sys.stdout.write("".join(status_table.as_plain(line, width) + "\n" for line in lines))
        else:
            out = console()
            out.print(_group(status_table.table_lines(report, out.width)), crop=False)
        return
    import time

    from rich.live import Live

    out = console()
    try:
        with Live(console=out, auto_refresh=False, transient=False) as live:
            while True:
                live.update(_group(status_table.table_lines(collect(), out.width)), refresh=True)
                time.sleep(watch)
    except KeyboardInterrupt:
        return


def _group(lines: list[Segments]) -> Group:
    from rich.console import Group

    from launcher.views.status_table import as_text

    return Group(*(as_text(line) for line in lines))


FAST = {("status",): (False, False), ("status", "--json"): (False, True), ("status", "--all"): (True, False),
        ("status", "-a"): (True, False)}  # fmt: skip
"""`launch status`'s commonest command lines: (all, json)."""


def fast_status(argv: list[str]) -> bool:
    """Run `launch status` [--json | --all] as the verb does, without typer's parsing (whose
    coercion of the verb's options imports pydantic: most of the default page's time); False for
    any other command line (or a shell completion request), which typer parses."""
    opts = FAST.get(tuple(argv))
    if opts is None or any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return False
    from launcher.runs.registry import Registry

    try:
        _status_table(Registry(), opts[0], opts[1], None, [], None, None)
    except BrokenPipeError:  # `launch status | head`: quiet, exit 1, as typer does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    return True


def _refresh(registry: Registry, rows: list[RunRow], fresh: bool = False) -> list[RunRow]:
    """The schedulers asked about the unfinished `rows` (the backends imported only when there are
    some: a registry of ended runs is shown without them)."""
    from launcher.runs.state import RunState

    if all(r.state == RunState.SUBMITTING or RunState.ended(r.state) for r in rows):
        return rows
    from launcher.runs.refresh import refresh

    return refresh(registry, rows, fresh=fresh)


@app.command("logs")
def logs_cmd(
    run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the run ends")] = False,
    task: Annotated[Optional[int], typer.Option("--task", help="only this array task")] = None,  # noqa: UP045
    merged: Annotated[
        bool, typer.Option("--merged", "-m", help="stdout and stderr interleaved by time, all on stdout")
    ] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="every line as written (no library noise filtered out)")
    ] = False,
) -> None:
    """Print a run's logs: stdout lines labelled `out|`, stderr lines `err|`; known library noise
    (FutureWarnings, W&B banners, ...) is left out of the view, never out of the files."""
    from launcher.errors import SetupError, UserError
    from launcher.runs import refresh as refreshing
    from launcher.runs.find import find_row
    from launcher.runs.registry import Registry
    from launcher.views import logs as logview

    registry = Registry()
    row = find_row(registry, run)
    tasks = [index for index, _, _ in row.jobs]
    if task is not None and task not in tasks:
        raise UserError(f"--task {task}: {row.run_id} {logview.tasks_text(tasks)}")
    if not Path(row.run_dir).is_dir():
        raise SetupError(f"{row.run_id}: its run directory {row.run_dir} is gone (deleted or moved): no logs")
    backend = refreshing.backend_of(row)
    try:
        for index, job_id, _ in row.jobs:
            if task is None or task == index:
                prefix = f"[{index}] " if len(row.jobs) > 1 and task is None else ""
                source = partial(backend.logs, Path(row.run_dir), job_id)
                logview.show(source, follow, prefix, merged=merged, raw=raw)
    except KeyboardInterrupt:
        if not follow:
            raise
        raise typer.Exit(logview.interrupted([row.run_id])) from None


@app.command("cancel")
def cancel_cmd(run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")]) -> None:
    """Cancel a run: every job and task of it, and every process they started; its chain too."""
    from launcher.loop import chain
    from launcher.runs import service as launching
    from launcher.runs.find import find_row
    from launcher.runs.registry import Registry

    registry = Registry()
    if _sweep_cancel(registry, run):
        return
    if not registry.find(run) and _evaluations_cancel(registry, run):  # a training run never registered
        return
    row = find_row(registry, run)
    silent: list[str] = []
    with console(stderr=True).status(f"Cancelling {row.run_id} ..."):
        state = launching.cancel(registry, row, silent.append)
        chained = chain.cancel(registry, registry.get(row.run_id) or row)
    said = f"cancel sent; {silent[0]}" if silent else state.value
    print(f"{row.run_id}: {said}" + (f" (chain: {chained})" if chained else ""))
    _evaluations_cancel(registry, row.run_id)


def _evaluations_cancel(registry: Registry, run_id: str) -> bool:
    """The unfinished runs whose parent is `run_id` (a reeval's evaluations, in any number of arrays),
    cancelled together; False when there are none."""
    from launcher.runs import service as launching

    rows = [r for r in registry.children(run_id) if not launching.finished(r.state)]
    if not rows:
        return False
    with console(stderr=True).status(f"Cancelling {len(rows)} evaluation(s) of {run_id} ..."):
        states = launching.cancel_many(registry, rows)
    for child, state in states.items():
        print(f"{child}: {state.value}")
    return True


def _sweep_status(registry: Registry, ref: str, fresh: bool = False) -> bool:
    """`launch status SWEEP`: its points table; False when `ref` names no sweep."""
    from launcher.loop import sweep
    from launcher.runs import refresh as refreshing
    from launcher.runs import service as launching
    from launcher.views.sweeps import sweep_table

    found = sweep.resolve(registry, ref)
    if found is None:
        return False
    with console(stderr=True).status("Asking the schedulers ..."):
        rows = refreshing.refresh(registry, registry.children(found.sweep_id), fresh=fresh)
        used = launching.used_gpu_hours(rows)
    wide_console().print(sweep_table(found, rows, used), crop=False)
    return True


def _sweep_cancel(registry: Registry, ref: str) -> bool:
    """`launch cancel SWEEP`: every unfinished point; False when `ref` names no sweep."""
    from launcher.loop import sweep

    found = sweep.resolve(registry, ref)
    if found is None:
        return False
    with console(stderr=True).status(f"Cancelling {found.sweep_id} ..."):
        states = sweep.cancel_all(registry, found)
    for run_id, state in states.items():
        print(f"{run_id}: {state}")
    return True
