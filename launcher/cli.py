"""`launch`: one thin function per verb. Heavy modules are imported inside the verbs."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from launcher.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from launcher.registry import Registry

app = typer.Typer(
    name="launch",
    help="Launch LLM fine-tuning and evaluation recipes on Slurm, Ray or this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ClusterOpt = Annotated[str, typer.Option("--cluster", "-c", help="cluster profile: name or YAML path")]
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Option("--set", help="override a recipe key, value read as YAML: --set train.lr=1e-5"),
]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@app.command("recipe")
def recipe_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name (see `launch recipes`) or YAML path")],
    cluster: ClusterOpt,
    set_: SetOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be submitted")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="stream logs; exit with the outcome")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="submit even if the planner says no fit")] = False,
) -> None:
    """Validate a recipe, check it fits the cluster, and submit it."""
    from launcher import launching
    from launcher.registry import Registry

    prepared = launching.prepare(recipe, cluster, set_ or [], force=force)
    if dry_run:
        sys.stdout.write(prepared.request.describe())
        return
    registry = Registry()
    with _console(stderr=True).status(f"Submitting to {prepared.run.profile.name} ..."):
        job_id = launching.submit(prepared, registry)
    run = prepared.run
    print(run.run_id, flush=True)
    err = _console(stderr=True)
    err.print(f"submitted: job {job_id} on {run.profile.name} ({run.profile.backend})")
    err.print(f"run directory: {run.run_dir}")
    err.print(f"follow: launch logs {run.run_id} -f")
    if follow:
        raise typer.Exit(_follow(registry, run.run_id))


def _print_log(lines: Iterable[tuple[Path, str]], prefix: str = "") -> None:
    """Job stdout to our stdout, job stderr (`*.err`) to our stderr."""
    for path, line in lines:
        stream = sys.stderr if path.suffix == ".err" else sys.stdout
        stream.write(f"{prefix}{line}\n")
        stream.flush()


def _follow(registry: Registry, run_id: str) -> int:
    """Stream a run's logs until it ends; 0 only when it completed."""
    from launcher import launching
    from launcher.backends.base import JobState

    row = launching.find_run(registry, run_id)
    backend = launching.backend_of(row)
    for job_id in row.job_ids:
        _print_log(backend.logs(Path(row.run_dir), job_id, follow=True))
    state = JobState(launching.refresh(registry, [row])[0].state)
    _console(stderr=True).print(f"{run_id}: {state.value}")
    return 0 if state is JobState.COMPLETED else 1


@app.command("plan")
def plan_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name or YAML path")],
    cluster: ClusterOpt,
    set_: SetOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object instead of tables")] = False,
) -> None:
    """Will the recipe fit the cluster's GPUs, and how long will an epoch take."""
    import json

    from launcher.cluster import check_fit, load_cluster
    from launcher.plan import plan, render_plan
    from launcher.recipe import load_recipe

    loaded = load_recipe(recipe, set_ or [])
    profile = load_cluster(cluster)
    check_fit(loaded, profile)
    estimate = plan(loaded, profile)
    if json_:
        print(json.dumps(estimate.to_json(), indent=2))
    else:
        _console().print(render_plan(estimate))
    raise typer.Exit(0 if estimate.fits else 1)


@app.command("recipes")
def recipes_cmd() -> None:
    """List the recipes (project recipes/, then $LAUNCH_HOME/recipes)."""
    from launcher.listing import recipe_table

    _console().print(recipe_table())


@app.command("clusters")
def clusters_cmd() -> None:
    """List the cluster profiles (project cluster/, then $LAUNCH_HOME/clusters)."""
    from launcher.listing import cluster_table

    _console().print(cluster_table())


@app.command("show")
def show_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name or YAML path")],
    cluster: Annotated[Optional[str], typer.Option("--cluster", "-c")] = None,  # noqa: UP045
    set_: SetOpt = None,
) -> None:
    """Print the resolved recipe (every default filled in); with --cluster, check it fits."""
    from launcher.cluster import check_fit, load_cluster
    from launcher.recipe import load_recipe

    loaded = load_recipe(recipe, set_ or [])
    sys.stdout.write(f"# resolved from {loaded.source}\n{loaded.to_yaml()}")
    if cluster:
        profile = load_cluster(cluster)
        check_fit(loaded, profile)
        _console(stderr=True).print(f"fits cluster {profile.name}: resources check passed")


@app.command("status")
def status_cmd(
    run: Annotated[Optional[str], typer.Argument(help="run id (or a unique prefix)")] = None,  # noqa: UP045
    all_: Annotated[bool, typer.Option("--all", "-a", help="show every run, not the last 50")] = False,
) -> None:
    """Every run with its state; one run in detail."""
    from launcher import launching
    from launcher.listing import run_detail, runs_table
    from launcher.registry import Registry

    registry = Registry()
    if run:
        row = launching.find_run(registry, run)
        with _console(stderr=True).status("Asking the scheduler ..."):
            row = launching.refresh(registry, [row])[0]
        _console().print(run_detail(row), crop=False, soft_wrap=True)
        return
    rows = registry.all()
    rows = rows if all_ else rows[-50:]
    with _console(stderr=True).status("Asking the schedulers ..."):
        rows = launching.refresh(registry, rows)
    _console().print(runs_table(rows))


@app.command("logs")
def logs_cmd(
    run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the run ends")] = False,
    task: Annotated[Optional[int], typer.Option("--task", help="only this array task")] = None,  # noqa: UP045
) -> None:
    """Print a run's logs (stdout and stderr of each task)."""
    from launcher import launching
    from launcher.registry import Registry

    registry = Registry()
    row = launching.find_run(registry, run)
    backend = launching.backend_of(row)
    for index, job_id, _ in row.jobs:
        if task is None or task == index:
            prefix = f"[{index}] " if len(row.jobs) > 1 and task is None else ""
            _print_log(backend.logs(Path(row.run_dir), job_id, follow=follow), prefix)


@app.command("cancel")
def cancel_cmd(run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")]) -> None:
    """Cancel a run: every job and task of it, and every process they started."""
    from launcher import launching
    from launcher.registry import Registry

    registry = Registry()
    row = launching.find_run(registry, run)
    with _console(stderr=True).status(f"Cancelling {row.run_id} ..."):
        state = launching.cancel(registry, row)
    print(f"{row.run_id}: {state.value}")


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as err:
        plan = getattr(err, "plan", None)
        if plan is not None:
            from launcher.plan import render_plan

            _console(stderr=True).print(render_plan(plan))
        sys.stderr.write(f"error: {err}\n")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
