"""`launch`: one thin function per verb. Heavy modules are imported inside the verbs."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from launcher.errors import SetupError, UserError

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
    """Rich console that prints text as it is: a `[` in a path or a run id is never markup."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False)


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
        from launcher.run import files_text

        sys.stdout.write(prepared.request.describe())
        sys.stdout.write("\n" + files_text(prepared.run, prepared.request.materialize()))
        return
    registry = Registry()
    with _console(stderr=True).status(f"Submitting to {prepared.run.profile.name} ..."):
        job_id = launching.submit(prepared, registry)
    run = prepared.run
    print(run.run_id, flush=True)
    err = _console(stderr=True)
    err.print(f"submitted: job {job_id} on {run.profile.name} ({run.profile.backend})", soft_wrap=True)
    err.print(f"run directory: {run.run_dir}", soft_wrap=True)  # never wrapped: it can be copied
    err.print(f"follow: launch logs {run.run_id} -f", soft_wrap=True)
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
    from launcher import launching
    from launcher.registry import Registry

    registry = Registry()
    if run:
        from launcher.listing import run_detail

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
    from launcher import status_view

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


@app.command("sync")
def sync_cmd(
    run: Annotated[str, typer.Argument(help="run id (or a unique prefix) or run directory")],
) -> None:
    """Upload whatever of a run is not in its artifact store yet (idempotent); exit 1 if the
    store cannot be reached."""
    from launcher import uploads
    from launcher.reeval import resolve_run
    from launcher.registry import Registry

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


@app.command("score")
def score_cmd(
    file: Annotated[Path, typer.Argument(help="predictions.jsonl (jobs.evaluate) or a research output CSV")],
    format_: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--format", help="jsonl | seed-csv | seed-cls (default: from the extension)"),
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="strict | seed | all")] = "all",
    json_: Annotated[bool, typer.Option("--json", help="one JSON object instead of tables")] = False,
    level: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--level", help="seed-cls: the DDC level (default: from the file name or prompt)"),
    ] = None,
    labels: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--labels", help="seed-cls: label tree CSV (default: the shipped DDC tree)"),
    ] = None,
) -> None:
    """Score an existing predictions file (no model needed): strict, seed, token, sentence."""
    from launcher.scoring import score as scoring

    if format_ == "seed-cls":
        from launcher.scoring import seed_cls

        cls_result = seed_cls.score_seed_cls(file, level=level, labels=labels)
        print(scoring.to_json(cls_result) if json_ else seed_cls.render_text(cls_result))
        return
    if level is not None or labels is not None:
        raise UserError("--level and --labels apply only to --format seed-cls")
    scoring.check_metric(metric)
    result = scoring.select(scoring.score_file(file, format_), metric)
    if json_:
        print(scoring.to_json(result))
        return
    _console().print(scoring.render(result, f"{file} ({metric})"))


@app.command("reeval")
def reeval_cmd(
    run: Annotated[str, typer.Argument(help="training run id (or unique prefix) or run directory")],
    cluster: ClusterOpt,
    recipe: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--recipe", "-r", help="eval recipe (default: <training recipe>_eval or derived)"),
    ] = None,
    set_: SetOpt = None,
    every: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--every", help="only checkpoints whose step is a multiple of N"),
    ] = None,
    last: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--last", help="only the K latest (selected) checkpoints"),
    ] = None,
    max_parallel: Annotated[int, typer.Option("--max-parallel", help="array tasks at once")] = 8,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="wait for every eval; non-zero if any failed")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be submitted")] = False,
    force: Annotated[bool, typer.Option("--force", help="submit even if the planner says no fit")] = False,
) -> None:
    """Evaluate a training run's complete checkpoints not yet scored by the eval recipe."""
    from launcher import launching, reeval
    from launcher.registry import Registry

    registry = Registry()
    plan = reeval.plan(registry, run, recipe, set_ or [], every, last)
    err = _console(stderr=True)
    for change in plan.aligned:
        err.print(f"note: split taken from the training run: {change}", markup=False, soft_wrap=True)
    for ckpt in plan.checkpoints:
        if ckpt.status != "todo":
            how = "already scored" if ckpt.status == "scored" else "being evaluated"
            err.print(
                f"skip {ckpt.path.name}: {how} by {plan.eval_recipe.name} ({ckpt.run_id or '?'})",
                markup=False, soft_wrap=True,
            )  # fmt: skip
    if not plan.todo:
        if not plan.complete:
            print(f"nothing to do: {plan.run_id} has no complete checkpoint yet (checkpoints/*/COMPLETE)")
            return
        what = f"{len(plan.checkpoints)} selected of {plan.complete} complete checkpoint(s)"
        print(f"nothing to do: {what} of {plan.run_id} need no evaluation by {plan.eval_recipe.name}")
        return
    prepared = reeval.prepare(plan, cluster, force=force)
    if dry_run:
        sys.stdout.write(reeval.dry_run_text(plan, prepared, max_parallel))
        return
    with err.status(f"Submitting {len(prepared)} evaluation(s) ..."):
        job_ids = launching.submit_many(prepared, registry, max_parallel, parent=plan.run_id)
    for p, ckpt in zip(prepared, plan.todo, strict=True):
        print(p.run.run_id, flush=True)
        err.print(f"  {ckpt.path.name} (step {ckpt.step}) -> {ckpt.results}", markup=False, soft_wrap=True)
    profile = prepared[0].run.profile
    err.print(
        f"submitted {len(prepared)} evaluation(s) of {plan.run_id} with {plan.eval_recipe.name} on "
        f"{profile.name} ({profile.backend}): job(s) {', '.join(job_ids)}",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    if follow:
        raise typer.Exit(_follow_evals(registry, [p.run.run_id for p in prepared]))


def _follow_evals(registry: Registry, run_ids: list[str]) -> int:
    """Wait for eval runs; print each state change and F1; 0 only when all completed."""
    from launcher import reeval
    from launcher.backends.base import JobState
    from launcher.evaluation import read_metrics
    from launcher.registry import RunRow

    err = _console(stderr=True)

    def changed(row: RunRow) -> None:
        results = reeval.results_of(row)
        line = f"{row.run_id} ({results.name if results else '?'}): {row.state}"
        metrics = read_metrics(results) if results and row.state == "completed" else None
        if metrics:
            s = metrics["strict"]
            line += f"  F1 {s['f1']:.4f} (P {s['precision']:.4f} R {s['recall']:.4f})"
        err.print(line, markup=False, soft_wrap=True)

    rows = reeval.wait(registry, run_ids, changed)
    failed = [r for r in rows if JobState(r.state) is not JobState.COMPLETED]
    for row in failed:
        logs = sorted(Path(row.run_dir, "logs").glob("*.err"))
        tail = logs[-1].read_text(errors="replace").splitlines()[-10:] if logs else []
        err.print(
            f"--- {row.run_id}: {row.state}; last lines of {logs[-1] if logs else 'its log'}",
            markup=False, soft_wrap=True,
        )  # fmt: skip
        for line in tail:
            err.print(line, markup=False, soft_wrap=True)
    err.print(f"{len(rows) - len(failed)}/{len(rows)} evaluation(s) completed")
    return 1 if failed else 0


@app.command("bench")
def bench_cmd(
    runs: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="run ids, prefixes or directories (default: every run with results)"),
    ] = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="output directory (default: <runs root>/bench)"),
    ] = None,
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="do not log the W&B table")] = False,
) -> None:
    """The benchmark table beside the research's published numbers: .md, .csv, F1-by-step plot."""
    from launcher import paths, reeval
    from launcher.registry import Registry
    from launcher.scoring import bench, bench_cls

    registry = Registry()
    if runs:
        run_dirs = [reeval.resolve_run(registry, ref, reeval.TRAINING_KINDS)[1] for ref in runs]
        empty = [d.name for d in run_dirs if not bench.has_results(d)]
        if empty:
            raise UserError(
                f"run {empty[0]} has no results/*/metrics.json; evaluate a training run's checkpoints "
                f"first (launch reeval RUN --cluster C) and name the training run"
            )
    else:
        run_dirs = [Path(r.run_dir) for r in registry.all() if bench.has_results(Path(r.run_dir))]
    skipped: list[str] = []
    rows = bench.collect(run_dirs, skipped=skipped)
    for line in skipped:
        _console(stderr=True).print(f"warning: skipped {line}", soft_wrap=True)
    target = out or paths.runs_root() / "bench"
    files = bench.write(rows, target)
    cls_rows = bench_cls.collect(run_dirs)
    files.update(bench_cls.write(cls_rows, target))
    console = _console()
    if not console.is_terminal:
        console.width = max(console.width, 160)  # a file or pipe gets the table unwrapped
    console.print(bench.table(rows))
    console.print(bench_cls.table(cls_rows))
    err = _console(stderr=True)
    if not run_dirs:
        err.print("no run has results yet: only the published rows (launch reeval RUN to add some)")
    if not no_wandb:
        where = bench.log_wandb(rows, target, bench.wandb_project(run_dirs))
        if where:
            err.print(f"W&B table: {where}", markup=False, soft_wrap=True)
    err.print(f"wrote {', '.join(str(p) for p in files.values())}", markup=False, soft_wrap=True)


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
