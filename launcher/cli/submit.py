"""Verbs that check and submit recipes: recipe, plan, recipes, clusters, show."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from launcher.cli.common import ClusterOpt, ForceOpt, LiveCodeOpt, SetOpt, ThenOpt, app, console
from launcher.cli.follow import follow_chain, follow_run


@app.command("recipe")
def recipe_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name (see `launch recipes`) or YAML path")],
    cluster: ClusterOpt,
    set_: SetOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be submitted")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="stream logs; exit with the outcome")
    ] = False,
    force: ForceOpt = False,
    then: ThenOpt = None,
    live_code: LiveCodeOpt = False,
) -> None:
    """Validate a recipe, check it fits the cluster, and submit it."""
    from launcher.loop import chain
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    prepared = launching.prepare(recipe, cluster, set_ or [], force=force, live_code=live_code)
    if prepared.run.recipe.sweep is not None:
        console(stderr=True).print(f"note: one plain run; `launch sweep {recipe}` runs its sweep: section")
    chained = chain.validate(then, prepared.run.recipe, prepared.run.profile) if then else None
    if dry_run:
        from launcher.runs.cost import budget_line
        from launcher.runs.run import files_text

        sys.stdout.write(prepared.request.describe())
        sys.stdout.write(budget_line([prepared.gpu_hours], prepared.run.profile) + "\n")
        sys.stdout.write("\n" + files_text(prepared.run, prepared.request.materialize()))
        if chained:
            sys.stdout.write(f"# {chain.describe(chained)} (a chain job once training completed)\n")
        return
    launching.check_budget([prepared])  # before the registry is opened: a refusal creates nothing
    registry = Registry()
    with console(stderr=True).status(f"Submitting to {prepared.run.profile.name} ..."):
        job_id = launching.submit(prepared, registry)
        chain_job = chain.attach(registry, prepared.run.run_id, chained) if chained else None
    run = prepared.run
    print(run.run_id, flush=True)
    err = console(stderr=True)
    err.print(f"submitted: job {job_id} on {run.profile.name} ({run.profile.backend})", soft_wrap=True)
    err.print(f"run directory: {run.run_dir}", soft_wrap=True)  # never wrapped: it can be copied
    err.print(f"follow: launch logs {run.run_id} -f", soft_wrap=True)
    if chained:
        err.print(
            f"{chain.describe(chained)}: chain job {chain_job}; launch status {run.run_id}", soft_wrap=True
        )
    if follow:
        raise typer.Exit(follow_chain(registry, run.run_id) if chained else follow_run(registry, run.run_id))


@app.command("plan")
def plan_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name or YAML path")],
    cluster: ClusterOpt,
    set_: SetOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object instead of tables")] = False,
) -> None:
    """Will the recipe fit the cluster's GPUs, and how long will an epoch take."""
    import json

    from launcher.config.cluster import check_fit, load_cluster
    from launcher.config.recipe import load_recipe
    from launcher.plan import plan, render_plan

    loaded = load_recipe(recipe, set_ or [])
    profile = load_cluster(cluster)
    check_fit(loaded, profile)
    estimate = plan(loaded, profile)
    if json_:
        print(json.dumps(estimate.to_json(), indent=2))
    else:
        console().print(render_plan(estimate))
    raise typer.Exit(0 if estimate.fits else 1)


@app.command("recipes")
def recipes_cmd(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="each file's path")] = False,
) -> None:
    """List the recipes and where each comes from.

    Searched in order: the project's recipes/ (beside launch.toml), $LAUNCH_HOME/recipes, the built-ins."""
    from launcher.views.listing import recipe_table

    console().print(recipe_table(verbose))


@app.command("clusters")
def clusters_cmd(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="each file's path")] = False,
) -> None:
    """List the cluster profiles and where each comes from.

    Searched in order: the project's cluster/ (beside launch.toml), $LAUNCH_HOME/clusters, the built-ins."""
    from launcher.views.listing import cluster_table

    console().print(cluster_table(verbose))


@app.command("show")
def show_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name or YAML path; or a run id, prefix or directory")],
    cluster: Annotated[Optional[str], typer.Option("--cluster", "-c")] = None,  # noqa: UP045
    set_: SetOpt = None,
) -> None:
    """Print the resolved recipe (every default filled in); with --cluster, check it fits. For a
    run: the recipe it ran with and its --set overrides."""
    from launcher.config.cluster import check_fit, load_cluster
    from launcher.config.recipe import load_recipe
    from launcher.views.run import show_run_text

    run_text = None if cluster or set_ else show_run_text(recipe)
    if run_text is not None:
        sys.stdout.write(run_text)
        return
    loaded = load_recipe(recipe, set_ or [])
    sys.stdout.write(f"# resolved from {loaded.source}\n{loaded.to_yaml()}")
    if cluster:
        profile = load_cluster(cluster)
        check_fit(loaded, profile)
        console(stderr=True).print(f"fits cluster {profile.name}: resources check passed")
