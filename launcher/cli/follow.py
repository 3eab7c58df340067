"""The `--follow` loops of `launch recipe` and `launch reeval`: stream logs or poll states until the
runs end; each returns the exit code (0 only when everything completed)."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.cli.common import console

if TYPE_CHECKING:
    from launcher.runs.registry import Registry


def follow_run(registry: Registry, run_id: str) -> int:
    """Stream a run's logs until it ends; 0 only when it completed. Ctrl-C: the run goes on, 130."""
    from launcher.runs import refresh as refreshing
    from launcher.runs.find import find_row
    from launcher.runs.state import RunState
    from launcher.views import logs as logview

    row = find_row(registry, run_id)
    backend = refreshing.backend_of(row)
    try:
        for job_id in row.job_ids:
            logview.show(partial(backend.logs, Path(row.run_dir), job_id), follow=True)
    except KeyboardInterrupt:
        return logview.interrupted([run_id])
    state = RunState(refreshing.refresh(registry, [row])[0].state)
    console(stderr=True).print(f"{run_id}: {state.value}")
    return 0 if state is RunState.COMPLETED else 1


def follow_chain(registry: Registry, run_id: str) -> int:
    """Follow training, then the chain's evaluations (state and F1 of each), then print the bench
    table; 0 only when all of it succeeded. The first Ctrl-C, at any stage, stops following (the
    run and its chain go on), prints how to follow or cancel them and returns 130."""
    from launcher.views import logs as logview

    training = follow_run(registry, run_id)
    if training == 130:
        return training  # follow_run printed the hints
    try:
        return _follow_chain_steps(registry, run_id, trained=training == 0)
    except KeyboardInterrupt:
        return logview.interrupted([run_id])


def _follow_chain_steps(registry: Registry, run_id: str, trained: bool) -> int:
    import time

    from launcher.loop import chain

    row = registry.get(run_id)
    assert row is not None
    err = console(stderr=True)
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
        evals_ok = follow_evals(registry, found.evals) == 0 if found.evals else True
    with err.status("Building the bench table ..."):
        while not found.ended:
            time.sleep(1.0)
            found = chain.status(Path(row.run_dir), row.state) or found
    table = Path(row.run_dir, "chain", "bench.txt")
    if table.is_file():
        sys.stdout.write(table.read_text())
    err.print(chain.chain_lines(Path(row.run_dir), row.state)[0], markup=False, soft_wrap=True)
    return 0 if evals_ok and found.state == "completed" else 1


def follow_evals(registry: Registry, run_ids: list[str]) -> int:
    """Wait for eval runs; print each state change and F1, and each running one's progress (its
    progress.json: sentences done, rate, ETA); 0 only when all completed."""
    from launcher.loop import reeval
    from launcher.runs.progress import progress_line, read_progress
    from launcher.runs.registry import RunRow
    from launcher.runs.results import read_metrics
    from launcher.runs.state import RunState

    err = console(stderr=True)

    def changed(row: RunRow) -> None:
        results = reeval.results_of(row)
        where = f"{results.parent.name}/{results.name}" if results else "?"
        line = f"{row.run_id} ({where}): {row.state}"
        metrics = read_metrics(results) if results and row.state == "completed" else None
        if metrics:
            s = metrics["strict"]
            line += f"  F1 {s['f1']:.4f} (P {s['precision']:.4f} R {s['recall']:.4f})"
        err.print(line, markup=False, soft_wrap=True)

    shown: dict[str, str] = {}

    def progressed(row: RunRow) -> None:
        p = read_progress(Path(row.run_dir))
        if p is not None and p.updated_at != shown.get(row.run_id):
            shown[row.run_id] = p.updated_at
            results = reeval.results_of(row)
            where = results.parent.name if results else row.run_id
            err.print(f"  {where}: {progress_line(p)}", markup=False, soft_wrap=True)

    rows = reeval.wait(registry, run_ids, changed, on_poll=progressed)
    failed = [r for r in rows if RunState(r.state) is not RunState.COMPLETED]
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
