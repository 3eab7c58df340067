"""The research loop's verbs: score, reeval, bench, sweep, compare."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from launcher.cli.common import ClusterOpt, ForceOpt, LiveCodeOpt, SetOpt, ThenOpt, app, console, wide_console
from launcher.cli.follow import follow_evals
from launcher.errors import UserError, require_positive


def _jobs_text(job_ids: list[str], shown: int = 4) -> str:
    """The job ids of a submission, the middle of a long list left out: `a, b, ..., z (1200 jobs)`."""
    if len(job_ids) <= shown + 2:
        return ", ".join(job_ids)
    return f"{', '.join(job_ids[:shown])}, ..., {job_ids[-1]} ({len(job_ids)} jobs)"


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
    console().print(scoring.render(result, f"{file} ({metric})"))


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
    force: ForceOpt = False,
    live_code: LiveCodeOpt = False,
) -> None:
    """Evaluate a training run's complete checkpoints not yet scored by the eval recipe."""
    from functools import partial

    from launcher.loop import reeval
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry

    require_positive("--max-parallel", max_parallel)
    registry = Registry(create=not dry_run)  # a dry run creates nothing, not even the registry
    err = console(stderr=True)
    say = partial(err.print, markup=False, soft_wrap=True)  # what users typed: no markup
    # planned and submitted under the run's reeval lock: a second reeval at once sees these evaluations
    with reeval.planned(registry, run, recipe, set_ or [], every, last, lock=not dry_run, say=say) as plan:
        for change in plan.aligned:
            say(f"note: split taken from the training run: {change}")
        for ckpt in plan.checkpoints:
            if ckpt.status != "todo":
                how = "already scored" if ckpt.status == "scored" else "being evaluated"
                say(f"skip {ckpt.path.name}: {how} by {plan.eval_recipe.name} ({ckpt.run_id or '?'})")
        if not plan.todo:
            if not plan.complete:
                print(f"nothing to do: {plan.run_id} has no complete checkpoint yet (checkpoints/*/COMPLETE)")
                return
            what = f"{len(plan.checkpoints)} selected of {plan.complete} complete checkpoint(s)"
            print(f"nothing to do: {what} of {plan.run_id} need no evaluation by {plan.eval_recipe.name}")
            return
        prepared = reeval.prepare(plan, cluster, force=force, live_code=live_code)
        if dry_run:
            sys.stdout.write(reeval.dry_run_text(plan, prepared, max_parallel))
            return
        with err.status(f"Submitting {len(prepared)} evaluation(s) ..."):
            job_ids = launching.submit_many(prepared, registry, max_parallel, parent=plan.run_id)
        for p, ckpt in zip(prepared, plan.todo, strict=True):
            print(p.run.run_id, flush=True)
            say(f"  {ckpt.path.name} (step {ckpt.step}) -> {ckpt.results}")
        profile = prepared[0].run.profile
        say(f"submitted {len(prepared)} evaluation(s) of {plan.run_id} with {plan.eval_recipe.name} on "
            f"{profile.name} ({profile.backend}): job(s) {_jobs_text(job_ids)}")  # fmt: skip
    if follow:
        run_ids = [p.run.run_id for p in prepared]
        try:
            code = follow_evals(registry, run_ids)
        except KeyboardInterrupt:
            from launcher.views.logs import interrupted

            code = interrupted(run_ids, "evaluation")
        raise typer.Exit(code)


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
    """The benchmark table beside the research's published numbers: .md, .csv, F1 and loss plots."""
    from launcher import paths
    from launcher.loop import reeval
    from launcher.runs.find import find_run
    from launcher.runs.registry import Registry
    from launcher.scoring import bench, bench_cls

    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a directory; give a directory (created if missing)")
    registry = Registry()
    if runs:
        run_dirs = [find_run(registry, ref, reeval.TRAINING_KINDS).run_dir for ref in runs]
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
    cls_rows = bench_cls.collect(run_dirs, skipped=skipped)
    for line in skipped:
        console(stderr=True).print(f"warning: skipped {line}", markup=False, soft_wrap=True)
    target = out or paths.runs_root() / "bench"
    files = bench.write(rows, target, run_dirs)
    files.update(bench_cls.write(cls_rows, target))
    screen = wide_console()
    err = console(stderr=True)
    # named runs: only the tables they have rows in (the other's published rows are in its files)
    for name, ours, table, file in (
        ("GMB NER", any(not r.published for r in rows), bench.table(rows), "benchmark.md"),
        ("text classification", any(not r.published for r in cls_rows), bench_cls.table(cls_rows),
         "benchmark_classification.md"),
    ):  # fmt: skip
        if not runs or ours:
            screen.print(table)
        else:
            err.print(f"{name}: no rows from these runs; published rows in {target / file}",
                      markup=False, soft_wrap=True)  # fmt: skip
    if not run_dirs:
        err.print("no run has results yet: only the published rows (launch reeval RUN to add some)")
    if not no_wandb:
        where = bench.log_wandb(rows, target, bench.wandb_project(run_dirs))
        if where:
            err.print(f"W&B table: {where}", markup=False, soft_wrap=True)
    err.print(f"wrote {', '.join(str(p) for p in files.values())}", markup=False, soft_wrap=True)


@app.command("sweep")
def sweep_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe name or YAML path")],
    cluster: ClusterOpt,
    grid: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--grid", metavar="KEY=V1,V2", help="values to try (YAML): train.lr=1e-5,2e-5"),
    ] = None,
    zip_: Annotated[bool, typer.Option("--zip", help="pair the lists instead of all combinations")] = False,
    set_: SetOpt = None,
    max_parallel: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--max-parallel", help="points running at once (default: sweep.max_parallel or 4)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the points and the submission")] = False,
    force: ForceOpt = False,
    then: ThenOpt = None,
    live_code: LiveCodeOpt = False,
) -> None:
    """One run per point of a grid (or the recipe's sweep: section), all validated first; with
    --then, each point's checkpoints are evaluated (and benched) when that point completed."""
    from launcher.loop import chain, sweep
    from launcher.runs import service as launching
    from launcher.runs.registry import Registry
    from launcher.views.sweeps import point_text

    plan = sweep.prepare(recipe, cluster, grid or [], zip_, set_ or [], max_parallel, force, live_code)
    first = plan.prepared[0].run
    chained = chain.validate(then, first.recipe, first.profile) if then else None
    duplicates = sweep.duplicates_text(plan)
    if duplicates:
        console(stderr=True).print(duplicates, markup=False, soft_wrap=True)
    if dry_run:
        if chained:
            sys.stdout.write(f"# {chain.describe(chained)} (one chain per point, once it completed)\n")
        wide_console().print(sweep.dry_run_table(plan), crop=False)
        sys.stdout.write("\n" + sweep.dry_run_text(plan))
        return
    launching.check_budget(plan.prepared)  # before the registry is opened: a refusal creates nothing
    registry = Registry()
    err = console(stderr=True)
    with err.status(f"Submitting {len(plan.points)} point(s) ..."):
        job_ids = sweep.submit(plan, registry)
    print(plan.sweep_id, flush=True)  # first, whatever happens to the chains
    failures: list[str] = []
    if chained:
        with err.status(f"Submitting {len(plan.points)} chain(s) ..."):
            _, failures = chain.attach_many(registry, [p.run.run_id for p in plan.prepared], chained)
    for p, point in zip(plan.prepared, plan.points, strict=True):
        err.print(f"  {p.run.run_id}  {point_text(point)}", soft_wrap=True)
    profile = plan.prepared[0].run.profile
    err.print(
        f"submitted {len(job_ids)} point(s) on {profile.name} ({profile.backend}), at most "
        f"{sweep.at_once(plan)} at once: job(s) {_jobs_text(job_ids)}", soft_wrap=True,
    )  # fmt: skip
    if chained:
        err.print(f"{chain.describe(chained)}: one chain per point", soft_wrap=True)
    err.print(f"status: launch status {plan.sweep_id}", soft_wrap=True)
    for line in failures:
        err.print(f"error: {line}", markup=False, soft_wrap=True)
    if failures:
        err.print(f"{len(failures)} of {len(plan.points)} chain(s) not submitted", soft_wrap=True)
        raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[str], typer.Argument(help="two or more run ids, prefixes or directories")],
    png: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--png", help="also write loss and F1 curves of all of them to this PNG"),
    ] = None,
) -> None:
    """Runs side by side: the recipe keys that differ, best F1, final loss, tokens/s, time."""
    from launcher.loop import compare
    from launcher.runs.registry import Registry

    if png is not None:
        compare.png_target(png)  # a bad --png is refused before anything is read or printed
    summaries = compare.load(Registry(), runs)
    screen = wide_console()
    for table in compare.tables(summaries):
        screen.print(table)
    if png is not None:
        written = compare.write_png(summaries, png)
        console(stderr=True).print(f"wrote {written}", markup=False, soft_wrap=True)
