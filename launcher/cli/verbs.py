"""`launch`: one thin function per verb. Heavy modules are imported inside the verbs; the research
loop's verbs live in `launcher/cli/loop.py`, the app and shared options in `launcher/cli/common.py`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from launcher.cli.common import ClusterOpt, SetOpt, ThenOpt, _console, app
from launcher.errors import SetupError, UserError

if TYPE_CHECKING:
    from launcher.runs.registry import Registry


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
    then: ThenOpt = None,
) -> None:
    """Validate a recipe, check it fits the cluster, and submit it."""
    from launcher.loop import chain
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    prepared = launching.prepare(recipe, cluster, set_ or [], force=force)
    if prepared.run.recipe.sweep is not None:
        _console(stderr=True).print(f"note: one plain run; `launch sweep {recipe}` runs its sweep: section")
    chained = chain.validate(then, prepared.run.recipe, prepared.run.profile) if then else None
    if dry_run:
        from launcher.runs.run import files_text

        sys.stdout.write(prepared.request.describe())
        sys.stdout.write("\n" + files_text(prepared.run, prepared.request.materialize()))
        if chained:
            sys.stdout.write(f"# {chain.describe(chained)} (a chain job once training completed)\n")
        return
    registry = Registry()
    with _console(stderr=True).status(f"Submitting to {prepared.run.profile.name} ..."):
        job_id = launching.submit(prepared, registry)
        chain_job = chain.attach(registry, prepared.run.run_id, chained) if chained else None
    run = prepared.run
    print(run.run_id, flush=True)
    err = _console(stderr=True)
    err.print(f"submitted: job {job_id} on {run.profile.name} ({run.profile.backend})", soft_wrap=True)
    err.print(f"run directory: {run.run_dir}", soft_wrap=True)  # never wrapped: it can be copied
    err.print(f"follow: launch logs {run.run_id} -f", soft_wrap=True)
    if chained:
        err.print(
            f"{chain.describe(chained)}: chain job {chain_job}; launch status {run.run_id}", soft_wrap=True
        )
    if follow:
        raise typer.Exit(_follow_chain(registry, run.run_id) if chained else _follow(registry, run.run_id))


def _follow_chain(registry: Registry, run_id: str) -> int:
    """Follow training, then the chain's evaluations (state and F1 of each), then print the bench
    table; 0 only when all of it succeeded."""
    import time

    from launcher.loop import chain

    trained = _follow(registry, run_id) == 0
    row = registry.get(run_id)
    assert row is not None
    err = _console(stderr=True)
    seen: tuple[str, str | None] | None = None
    with err.status("Waiting for the chain ...") as spinner:
        while True:
            found = chain.status(Path(row.run_dir), row.state)
            if found is None:
                return 1
            if (found.state, found.reason) != seen:
                seen = (found.state, found.reason)
                line = chain.chain_lines(Path(row.run_dir), row.state)[0]
                err.print(line, markup=False, soft_wrap=True)
                spinner.update(line)
            if found.ended or found.submitted:
                break
            time.sleep(1.0)
    if not trained or found.state == "not started":
        return 1
    with err.status(f"Evaluating {len(found.evals)} checkpoint(s) ..."):
        evals_ok = _follow_evals(registry, found.evals) == 0 if found.evals else True
    with err.status("Building the bench table ..."):
        while not found.ended:
            time.sleep(1.0)
            found = chain.status(Path(row.run_dir), row.state) or found
    table = Path(row.run_dir, "chain", "bench.txt")
    if table.is_file():
        sys.stdout.write(table.read_text())
    err.print(chain.chain_lines(Path(row.run_dir), row.state)[0], markup=False, soft_wrap=True)
    return 0 if evals_ok and found.state == "completed" else 1


def _follow(registry: Registry, run_id: str) -> int:
    """Stream a run's logs until it ends; 0 only when it completed. Ctrl-C: the run goes on, 130."""
    from launcher.backends.base import JobState
    from launcher.runs import service as launching
    from launcher.views import logs as logview

    row = launching.find_run(registry, run_id)
    backend = launching.backend_of(row)
    try:
        for job_id in row.job_ids:
            logview.show(backend, Path(row.run_dir), job_id, follow=True)
    except KeyboardInterrupt:
        return logview.interrupted([run_id])
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
        _console().print(render_plan(estimate))
    raise typer.Exit(0 if estimate.fits else 1)


@app.command("recipes")
def recipes_cmd() -> None:
    """List the recipes (project recipes/, then $LAUNCH_HOME/recipes)."""
    from launcher.views.listing import recipe_table

    _console().print(recipe_table())


@app.command("clusters")
def clusters_cmd() -> None:
    """List the cluster profiles (project cluster/, then $LAUNCH_HOME/clusters)."""
    from launcher.views.listing import cluster_table

    _console().print(cluster_table())


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
    from launcher.loop.sweep import show_run_text

    run_text = None if cluster or set_ else show_run_text(recipe)
    if run_text is not None:
        sys.stdout.write(run_text)
        return
    loaded = load_recipe(recipe, set_ or [])
    sys.stdout.write(f"# resolved from {loaded.source}\n{loaded.to_yaml()}")
    if cluster:
        profile = load_cluster(cluster)
        check_fit(loaded, profile)
        _console(stderr=True).print(f"fits cluster {profile.name}: resources check passed")


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
            help="refresh in place every SECONDS (default 2); Ctrl-C stops",
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
) -> None:
    """Every run with its state, progress, best F1 or error; one run in detail."""
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    registry = Registry()
    if run and _sweep_status(registry, run):
        return
    if run:
        from launcher.views.listing import run_detail

        row = launching.find_run(registry, run)
        with _console(stderr=True).status("Asking the scheduler ..."):
            row = launching.refresh(registry, [row])[0]
        _console().print(run_detail(row), crop=False, soft_wrap=True)
        return
    _status_table(registry, all_, json_, watch, state or [], recipe, since)


def _status_table(
    registry: Registry, all_: bool, json_: bool, watch: float | None, state: list[str],
    recipe: str | None, since: str | None,
) -> None:  # fmt: skip
    from launcher.views import status as status_view

    if watch is not None and not watch > 0:
        raise UserError(f"--watch: SECONDS must be a positive number, got {watch:g}")
    filters = status_view.Filters(
        states=status_view.parse_states(state),
        recipe=recipe,
        since=status_view.parse_since(since) if since is not None else None,
    )
    out = _console()
    if json_:
        report = status_view.collect(registry, filters, all_)
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    if watch is None:
        with _console(stderr=True).status("Asking the schedulers ..."):
            report = status_view.collect(registry, filters, all_)
        out.print(status_view.table(report, out.width), crop=False)
        return
    import time

    from rich.live import Live

    try:
        with Live(console=out, auto_refresh=False, transient=False) as live:
            while True:
                report = status_view.collect(registry, filters, all_)
                live.update(status_view.table(report, out.width), refresh=True)
                time.sleep(watch)
    except KeyboardInterrupt:
        return


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
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry
    from launcher.views import logs as logview

    registry = Registry()
    row = launching.find_run(registry, run)
    backend = launching.backend_of(row)
    try:
        for index, job_id, _ in row.jobs:
            if task is None or task == index:
                prefix = f"[{index}] " if len(row.jobs) > 1 and task is None else ""
                logview.show(backend, Path(row.run_dir), job_id, follow, prefix, merged=merged, raw=raw)
    except KeyboardInterrupt:
        if not follow:
            raise
        raise typer.Exit(logview.interrupted([row.run_id])) from None


@app.command("cancel")
def cancel_cmd(run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")]) -> None:
    """Cancel a run: every job and task of it, and every process they started; its chain too."""
    from launcher.loop import chain
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    registry = Registry()
    if _sweep_cancel(registry, run):
        return
    row = launching.find_run(registry, run)
    with _console(stderr=True).status(f"Cancelling {row.run_id} ..."):
        state = launching.cancel(registry, row)
        chained = chain.cancel(registry, registry.get(row.run_id) or row)
    print(f"{row.run_id}: {state.value}" + (f" (chain: {chained})" if chained else ""))


@app.command("sync")
def sync_cmd(
    run: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="run id (or a unique prefix) or run directory; with --wandb also a sweep id"),
    ] = None,
    wandb: Annotated[
        bool, typer.Option("--wandb", help="upload the offline W&B runs instead (wandb sync)")
    ] = False,
    all_: Annotated[bool, typer.Option("--all", help="with --wandb: every registered run")] = False,
) -> None:
    """Upload whatever of a run is not in its artifact store yet (idempotent); exit 1 if the
    store cannot be reached. With --wandb: sync the offline W&B runs of RUN (and its evaluations),
    of every point of SWEEP, or of --all runs."""
    if wandb or all_:
        raise typer.Exit(_sync_wandb(run, all_, wandb))
    if run is None:
        raise UserError("launch sync: missing argument RUN (a run id, prefix or run directory)")
    from launcher.artifacts import uploads
    from launcher.loop.reeval import resolve_run
    from launcher.runs.registry import Registry

    run_id, run_dir = resolve_run(Registry(), run)
    err = _console(stderr=True)

    def report(outcome: uploads.Outcome) -> None:
        if outcome.sent:
            size = f"{outcome.files} file(s), {outcome.bytes / 2**20:.1f} MiB"
            err.print(f"uploaded {outcome.rel} ({size})", markup=False, soft_wrap=True)

    with err.status(f"Syncing {run_id} ..."):
        outcomes = uploads.sync_run(run_dir, report)
    sent = sum(1 for o in outcomes if o.sent)
    where = uploads.upload_state(run_dir).uri
    print(f"{run_id}: {sent} unit(s) uploaded, {len(outcomes) - sent} already there; all in {where}")


def _sync_wandb(ref: str | None, all_: bool, wandb: bool) -> int:
    """`launch sync ... --wandb`: what was synced, one line each; 0, or 1 after one error line."""
    from launcher.runs.registry import Registry
    from launcher.tracking import wandb_sync

    if not wandb:
        raise UserError("launch sync: --all goes with --wandb (the artifact-store sync takes one RUN)")
    offline = wandb_sync.offline_runs(wandb_sync.select(Registry(), ref, all_))
    err = _console(stderr=True)
    done = [o for o in offline if o.synced]
    for o in done:
        err.print(f"already synced: {o.run_id} (W&B run {o.wandb_id}) {o.path}", soft_wrap=True)

    def report(o: wandb_sync.OfflineRun) -> None:
        print(f"synced {o.run_id} (W&B run {o.wandb_id}) {o.path}", flush=True)

    todo = [o for o in offline if not o.synced]
    with err.status(f"wandb sync of {len(todo)} run(s) ..."):
        wandb_sync.sync(todo, report)
    what = ref if ref else "all runs"
    err.print(f"{what}: {len(todo)} W&B run(s) synced, {len(done)} already synced", soft_wrap=True)
    return 0


# importing cli_loop registers its verbs after these, in --help's order
from launcher.cli.loop import _follow_evals, _sweep_cancel, _sweep_status  # noqa: E402


def _fail(message: object, code: int) -> None:
    sys.stderr.write("".join(f"error: {line}\n" for line in str(message).splitlines() or [""]))
    sys.exit(code)


def main() -> None:
    """Entry point: user mistakes become one line on stderr (one per error) and exit code 2;
    a problem of this machine (disk, permissions, a damaged registry) one line and exit code 1."""
    import sqlite3

    try:
        app()
    except UserError as err:
        plan = getattr(err, "plan", None)
        if plan is not None:
            from launcher.plan import render_plan

            _console(stderr=True).print(render_plan(plan))
        _fail(err, err.exit_code)
    except SetupError as err:
        _fail(err, err.exit_code)
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}", 1)
    except sqlite3.DatabaseError as err:
        _fail(f"the run registry ($LAUNCH_HOME/registry.db) cannot be used: {err}", 1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
