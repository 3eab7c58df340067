"""`launch snapshots`: the code snapshots beside the runs, and removing those no run refers to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import app, console, wide_console
from launcher.errors import UserError


@app.command("snapshots")
def snapshots_cmd(
    prune: Annotated[
        bool, typer.Option("--prune", help="remove the snapshots no run refers to (kept: used in 10 min)")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="with --prune: say what it would free")] = False,
) -> None:
    """List the code snapshots under the runs root (files, size, created, runs that use them);
    --prune removes the ones no run refers to and says how much it frees."""
    from launcher import paths
    from launcher.runs import snapshot
    from launcher.runs.registry import Registry
    from launcher.views.code import prune_text, snapshots_table

    if dry_run and not prune:
        raise UserError("--dry-run goes with --prune (listing changes nothing)")
    runs_root = paths.runs_root()
    root = snapshot.snapshots_dir(runs_root)
    registry = Registry(create=False)
    registered = [Path(row.run_dir) for row in registry.all()]
    refs = snapshot.referenced(snapshot.run_dirs(runs_root, registered))
    if prune:
        pruned = snapshot.prune(root, refs, dry_run=dry_run)
        print(prune_text(pruned, dry_run))
        return
    stored = snapshot.inventory(root, refs)
    if not stored:
        console(stderr=True).print(f"no code snapshots in {root}", soft_wrap=True)
        return
    wide_console().print(snapshots_table(root, stored), crop=False)
    total = sum(s.bytes for s in stored)
    unused = [s for s in stored if not s.runs]
    console(stderr=True).print(
        f"{len(stored)} snapshot(s), {total / 1e6:.1f} MB as files (content shared between snapshots is "
        f"stored once); {len(unused)} no run refers to: launch snapshots --prune",
        soft_wrap=True,
    )
