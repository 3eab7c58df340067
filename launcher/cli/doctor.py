"""`launch doctor`: where the run registry lives, on what filesystem, in which journal mode; with
`--rebuild-registry`, a new registry made from the run directories (launch.json is the truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from launcher.cli.common import app


@app.command("doctor")
def doctor_cmd(
    rebuild_registry: Annotated[
        bool,
        typer.Option("--rebuild-registry", help="rebuild the registry from the run directories' launch.json"),
    ] = False,
    runs: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option("--runs", metavar="DIR", help="also a runs root to read (repeatable)"),
    ] = None,
) -> None:
    """The run registry: its file, filesystem and journal; --rebuild-registry makes it anew."""
    from launcher import paths
    from launcher.runs.registry import Registry

    path = paths.launch_home() / "registry.db"
    if rebuild_registry:
        from launcher.runs.rebuild import rebuild

        done = rebuild(path, [paths.runs_root(), *(runs or [])])
        for line in done.skipped:
            print(f"skipped {line}")
        print(
            f"rebuilt {path}: {done.runs} run(s) from {len(done.roots)} runs root(s) "
            f"({done.kept} with their state from the old registry, {done.runs - done.kept} `unknown` "
            f"until `launch status` asks their scheduler), {done.sweeps} sweep(s)"
        )
    registry = Registry(path)
    mode = registry.query("PRAGMA journal_mode").fetchone()[0]
    version = registry.query("PRAGMA user_version").fetchone()[0]
    where = f"network filesystem ({registry.network})" if registry.network else "local disk"
    print(f"registry   {path}")
    print(f"filesystem {where}")
    print(f"journal    {mode}" + (" + registry.lock (fcntl)" if registry.network else ""))
    print(f"schema     {version}")
    print(f"runs       {registry.count()}")
    registry.close()
