"""`launch sync --wandb`: upload the offline W&B runs of runs, a sweep, or everything.

jobs/wandb_run.py starts W&B with `dir=<run_dir>`, so an offline run lives in
`<run_dir>/wandb/offline-run-<time>-<wandb id>/run-<wandb id>.wandb` (launch.json's
`wandb.<job type>.offline_dir` names it too). Uploading is wandb's own `wandb sync DIR...`, run
once for all of them with the caller's environment (WANDB_API_KEY, WANDB_BASE_URL). wandb marks a
run it uploaded with `run-<id>.wandb.synced`: those are skipped, and a directory still without the
marker afterwards failed (wandb sync exits 0 after some server errors, so its exit code alone
does not tell). Before it starts, W&B's base URL must answer a short probe (launcher.tracking.
wandb_reach): a closed port, an unknown host or a server that never answers is one line, not a
silent wait.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import SetupError, UserError
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.registry import Registry, RunRow
from launcher.tracking.wandb_reach import base_url, check_reachable

SYNC_TIMEOUT_S = 1800


@dataclass(frozen=True)
class OfflineRun:
    run_id: str
    """The launcher run it belongs to."""
    path: Path
    """The offline-run-* directory."""

    @property
    def wandb_id(self) -> str:
        return self.path.name.rsplit("-", 1)[-1]

    @property
    def synced(self) -> bool:
        return any(self.path.glob("run-*.wandb.synced"))


def offline_dirs(run_dir: Path) -> list[Path]:
    """The offline W&B run directories of one run directory, oldest first."""
    found = {p.resolve() for p in run_dir.glob("wandb/offline-run-*") if any(p.glob("run-*.wandb"))}
    for entry in LaunchInfo.read(run_dir).wandb.values():
        where = entry.get("offline_dir") if isinstance(entry, dict) else None
        if where and any(Path(where).glob("run-*.wandb")):
            found.add(Path(where).resolve())
    return sorted(found, key=lambda p: p.name)


def _with_children(rows: list[RunRow], every: list[RunRow]) -> list[RunRow]:
    """`rows` and, recursively, the runs whose parent is one of them (a run's evaluations)."""
    chosen = {r.run_id: r for r in rows}
    frontier = set(chosen)
    while frontier:
        children = [r for r in every if r.parent in frontier and r.run_id not in chosen]
        chosen.update({r.run_id: r for r in children})
        frontier = {r.run_id for r in children}
    return list(chosen.values())


def select(registry: Registry, ref: str | None, all_: bool) -> list[tuple[str, Path]]:
    """(run id, run directory) of what `ref` names: a run (id, prefix or directory) with its
    evaluations, a sweep id (every point: the runs whose parent is the sweep, and theirs), or with
    `all_` every registered run."""
    if all_ == (ref is not None):
        raise UserError("launch sync --wandb: name one RUN or SWEEP, or give --all (not both)")
    every = registry.all()
    if all_:
        return [(r.run_id, Path(r.run_dir)) for r in every]
    assert ref is not None
    points = [r for r in every if r.parent == ref]
    if points and registry.get(ref) is None:  # a sweep id: it has points but no row of its own
        return [(r.run_id, Path(r.run_dir)) for r in _with_children(points, every)]
    from launcher.runs.find import find_run

    run_id, run_dir, _ = find_run(registry, ref)
    row = registry.get(run_id)
    rows = _with_children([row], every) if row is not None else []
    found = [(r.run_id, Path(r.run_dir)) for r in rows if r.run_id != run_id]
    return [(run_id, run_dir), *found]


def offline_runs(runs: list[tuple[str, Path]]) -> list[OfflineRun]:
    return [OfflineRun(run_id, d) for run_id, run_dir in runs for d in offline_dirs(run_dir)]


def command(dirs: list[Path]) -> list[str]:
    """The exact invocation: wandb's CLI from this interpreter."""
    return [sys.executable, "-m", "wandb", "sync", *(str(d) for d in dirs)]


def sync(todo: list[OfflineRun], report: Callable[[OfflineRun], None]) -> None:
    """Upload `todo` with one `wandb sync`; report each one synced; SetupError (one line) when
    W&B cannot be reached (checked first, within wandb_reach.REACH_TIMEOUT_S) or wandb could not upload one
    of them."""
    if not todo:
        return
    check_reachable(base_url())
    try:
        proc = subprocess.run(
            command([o.path for o in todo]), capture_output=True, text=True, timeout=SYNC_TIMEOUT_S,
            env=os.environ.copy(), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SetupError(f"wandb sync did not finish within {SYNC_TIMEOUT_S} s") from None
    failed = [o for o in todo if not o.synced]
    for offline in todo:
        if offline.synced:
            report(offline)
    if failed or proc.returncode != 0:
        first = failed[0].path if failed else todo[0].path
        raise SetupError(
            f"wandb sync failed for {len(failed) or len(todo)} of {len(todo)} W&B run(s) (first: {first}): "
            f"{_reason(proc.stdout + proc.stderr)}"
        )


def _reason(output: str) -> str:
    """The line of wandb's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("Error:", "wandb: ERROR")) and "Find detailed error logs" not in line:
            return line.removeprefix("wandb: ")
    return lines[-1] if lines else "no output"
