"""`launch sync`: upload a run to its artifact store, or (--wandb) sync offline W&B runs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from launcher.cli.common import app, console
from launcher.errors import UserError


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
    from launcher.runs.find import find_run
    from launcher.runs.registry import Registry

    run_id, run_dir, _ = find_run(Registry(), run)
    err = console(stderr=True)

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
    err = console(stderr=True)
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
