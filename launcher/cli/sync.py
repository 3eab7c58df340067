"""`launch sync`: upload a run to its artifact store, or (--wandb) sync offline W&B runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from launcher.cli.common import app, console
from launcher.errors import SetupError, UserError

if TYPE_CHECKING:
    from launcher.runs.registry import RunRow
    from launcher.tracking.wandb_sync import Selection


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
    follow: Annotated[
        bool, typer.Option("--follow", help="with --wandb: sync again every --interval until the runs ended")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="with --follow: seconds between passes", min=1.0, max=3600.0)
    ] = 30.0,
) -> None:
    """Upload whatever of a run is not in its artifact store yet (idempotent); exit 1 if the
    store cannot be reached. With --wandb: send W&B what it lacks of the offline W&B runs of RUN
    (and its evaluations), of every point of SWEEP, or of --all runs: every step once, requeued
    starts as one W&B run, with the launcher's state; --follow does it every --interval seconds
    while they run."""
    if wandb or all_ or follow:
        raise typer.Exit(_sync_wandb(run, all_, wandb, follow, interval))
    if run is None:
        raise UserError("launch sync: missing argument RUN (a run id, prefix or run directory)")
    from launcher.artifacts import uploads
    from launcher.runs.find import find_run
    from launcher.runs.registry import Registry

    registry = Registry()
    run_id, run_dir, _ = find_run(registry, run)
    err = console(stderr=True)

    def report(outcome: uploads.Outcome) -> None:
        if outcome.sent:
            size = f"{outcome.files} file(s), {outcome.bytes / 2**20:.1f} MiB"
            err.print(f"uploaded {outcome.rel} ({size})", markup=False, soft_wrap=True)

    with err.status(f"Syncing {run_id} ..."):
        try:
            outcomes = uploads.sync_run(run_dir, report)
        finally:  # its ledger changed: `launch status --all` reads it again
            registry.forget_facts([run_id])
    sent = sum(1 for o in outcomes if o.sent)
    where = uploads.upload_state(run_dir).uri
    print(f"{run_id}: {sent} unit(s) uploaded, {len(outcomes) - sent} already there; all in {where}")


def _story(row: RunRow) -> dict[str, Any]:
    """The launcher's story of a run as W&B summary keys: state, restarts, cluster, last error line,
    and once it ended the GPU-hours it used (while it runs they would change every pass)."""
    from contextlib import suppress

    from launcher.runs import service
    from launcher.tracking.wandb_mode import redact_text
    from launcher.views.status import last_error_line
    from launcher.views.status_table import failed

    story: dict[str, Any] = {"launcher/run_id": row.run_id, "launcher/state": row.state,
                             "launcher/restarts": row.restarts, "launcher/cluster": row.cluster}  # fmt: skip
    error = last_error_line(Path(row.run_dir)) if failed(row.state) else None
    if error:  # a job's stderr line goes to W&B: never a secret the job printed
        story["launcher/last_error"] = redact_text(error)
    if service.finished(row.state):
        with suppress(SetupError, UserError):  # unknown now: the next pass asks again
            hours = service.used_gpu_hours([row]).get(row.run_id)
            if hours is not None:
                story["launcher/gpu_hours"] = round(hours, 4)
    return story


def _selection(ref: str | None, all_: bool) -> Selection:
    """The W&B runs `ref` (or --all) names, with the registry's rows refreshed from their schedulers."""
    from launcher.runs import refresh as refreshing
    from launcher.runs.registry import Registry
    from launcher.runs.state import RunState
    from launcher.tracking import wandb_sync

    registry = Registry()
    runs = wandb_sync.select(registry, ref, all_)
    ids = {run_id for run_id, _ in runs}
    rows = [r for r in registry.all() if r.run_id in ids]
    rows = [r for r in rows if RunState.ended(r.state)] + refreshing.refresh(
        registry, [r for r in rows if not RunState.ended(r.state)]
    )
    stories = {r.run_id: _story(r) for r in rows}
    ended = {r.run_id for r in rows if RunState.ended(r.state)} | (ids - set(stories))
    return wandb_sync.Selection(wandb_sync.targets(runs), stories, ended)


def _sync_wandb(ref: str | None, all_: bool, wandb: bool, follow: bool, interval: float) -> int:
    """`launch sync ... --wandb [--follow]`: one line per W&B run pushed; 0, or 1 when one was not
    synced (its line says why)."""
    from launcher.runs.registry import Registry
    from launcher.tracking import wandb_sync

    if not wandb:
        raise UserError("launch sync: --all and --follow go with --wandb (the store sync takes one RUN)")
    err = console(stderr=True)
    failures: list[str] = []

    registry = Registry()

    def report(o: wandb_sync.Outcome) -> None:
        registry.forget_facts([o.target.run_id])  # its wandb-sync.json changed
        where = f"{o.target.run_id} (W&B run {o.target.wandb_id})"
        if o.error:
            failures.append(f"{where}: {o.error}")
            if follow:  # once the sync ends, its error line (and `launch status`) says why
                err.print(f"not synced: {failures[-1]}", markup=False, soft_wrap=True)
        elif o.sent:
            print(f"synced {where}: steps {o.first}-{o.last} sent", flush=True)
        else:
            print(f"synced {where}: nothing new (W&B holds up to step {o.last})", flush=True)

    def warn(line: str) -> None:
        err.print(f"not synced: {line}", markup=False, soft_wrap=True)

    if follow:
        wandb_sync.follow(lambda: _selection(ref, all_), report, interval, warn)
        return 0
    selection = _selection(ref, all_)
    with err.status(f"W&B sync of {len(selection.targets)} run(s) ..."):
        outcomes = wandb_sync.sync_pass(selection, report)
    if failures:
        raise SetupError(f"{len(failures)} of {len(outcomes)} W&B run(s) not synced: {failures[0]}")
    what = ref if ref else "all runs"
    current = len(selection.targets) - len(outcomes)
    err.print(f"{what}: {len(outcomes)} W&B run(s) synced, {current} already up to date", soft_wrap=True)
    return 0
