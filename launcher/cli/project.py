"""`launch init`: make a directory a project with a recipe and a profile of this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from launcher.cli.common import app


@app.command("init")
def init_cmd(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="the project's directory (made when missing)")
    ] = Path("."),
    name: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional here
        typer.Option("--name", help="the profile's name (default: the Slurm cluster's, else local)"),
    ] = None,
    backend: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional here
        typer.Option("--backend", help="slurm or local (default: slurm when sinfo answers here)"),
    ] = None,
    partition: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional here
        typer.Option(
            "--partition", help="the Slurm partition the profile describes (default: the default one)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite files that exist")] = False,
) -> None:
    """Make a directory a project, with a recipe and a profile of this machine.

    Writes DIR/launch.toml, DIR/recipes/example.yaml and DIR/cluster/NAME.yaml: on a Slurm login
    node from scontrol (partitions, GPUs, CPUs, memory, time limit), else from nvidia-smi or the
    CPUs. In a project already, only the profile is written."""
    from launcher.config.project import init_project

    done = init_project(directory, name, backend, partition, force)
    for path in done.kept:
        print(f"kept  {path} (a project already)")
    for path in done.written:
        print(f"wrote {path}")
    print(f"the profile {done.profile.name} comes from {done.profile.source}")
    for todo in done.profile.todos:
        print(f"TODO  cluster/{done.profile.name}.yaml: {todo}")
    here = Path.cwd().resolve()
    cd = "" if done.directory.resolve() == here else f"cd {done.directory} && "
    print(f"next: {cd}{done.profile.next_command}")
