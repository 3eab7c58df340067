"""`launch doctor --rebuild-registry`: a new registry made from the run directories, whose launch.json
is the source of truth, and put in place of the old one atomically (built beside it, then renamed).

Where the old registry can still be read, each run keeps its state, note and restarts and each sweep
its row; a run only the directories know starts `unknown`, so the next `launch status` asks its
scheduler. The facts cache starts empty.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import SetupError
from launcher.runs.launch_info import FILE, LaunchInfo
from launcher.runs.registry import Registry, RunRow, SweepRow
from launcher.runs.state import RunState


@dataclass
class Rebuilt:
    """What a rebuild found: runs registered, of those the old registry knew, directories skipped."""

    path: Path
    runs: int = 0
    kept: int = 0
    sweeps: int = 0
    roots: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _old(path: Path) -> tuple[dict[str, RunRow], list[SweepRow]]:
    """The old registry's rows, or nothing when it is missing or cannot be read."""
    if not path.exists():
        return {}, []
    try:
        old = Registry(path, create=False)
        try:
            return {r.run_id: r for r in old.all()}, old.sweeps()
        finally:
            old.close()
    except (sqlite3.Error, SetupError):  # a damaged registry is why one rebuilds
        return {}, []


def run_dirs(roots: list[Path]) -> list[Path]:
    """The directories directly under `roots` that hold a launch.json, sorted, each once."""
    found: set[Path] = set()
    for root in roots:
        with contextlib.suppress(OSError):
            found.update(d.resolve() for d in root.iterdir() if (d / FILE).is_file())
    return sorted(found)


def rebuild(path: Path, roots: list[Path]) -> Rebuilt:
    """Build `<path>.rebuild` from the run directories under `roots` (and under the directories
    that hold the old registry's runs), then rename it over `path`."""
    old_rows, old_sweeps = _old(path)
    roots = sorted({r.resolve() for r in roots} | {Path(r.run_dir).parent for r in old_rows.values()})
    done = Rebuilt(path, roots=roots)
    fresh = path.with_name(path.name + ".rebuild")
    for leftover in (fresh, Path(f"{fresh}-journal"), Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        leftover.unlink(missing_ok=True)
    registry = Registry(fresh)
    sweeps: dict[str, tuple[str, str, list[str]]] = {}
    try:
        infos = [(d, LaunchInfo.read(d)) for d in run_dirs(roots)]
        ids = {info.run_id for _, info in infos}
        # parents first, so that each row's keys (its line in `launch status`) are right
        infos.sort(key=lambda pair: (bool(pair[1].parent and pair[1].parent in ids), pair[1].created_at))
        for run_dir, info in infos:
            if not info.run_id or not info.recipe:
                done.skipped.append(f"{run_dir}: launch.json names no run id or recipe")
                continue
            parent = info.parent or info.sweep
            try:
                registry.add(
                    info.run_id, info.recipe, info.cluster, info.backend, info.job, run_dir, info.job_ids,
                    state=RunState.UNKNOWN.value, parent=parent, created_at=info.created_at or None,
                )  # fmt: skip
            except sqlite3.IntegrityError:
                done.skipped.append(f"{run_dir}: run id {info.run_id} seen twice")
                continue
            done.runs += 1
            before = old_rows.get(info.run_id)
            if before is not None:
                done.kept += 1
                tasks = {task: state for task, _, state in before.jobs}
                registry.set_state(info.run_id, before.state, tasks, before.note, before.restarts)
            if info.sweep:
                sweeps.setdefault(info.sweep, (info.recipe, info.cluster, sorted(info.sweep_point or {})))
        for row in old_sweeps:
            registry.add_sweep(row.sweep_id, row.recipe, row.cluster, row.keys)
            sweeps.pop(row.sweep_id, None)
            done.sweeps += 1
        for sweep_id, (recipe, cluster, keys) in sweeps.items():
            registry.add_sweep(sweep_id, recipe, cluster, keys)
            done.sweeps += 1
    except BaseException:
        registry.close()
        fresh.unlink(missing_ok=True)
        raise
    registry.close()  # the last connection: its WAL is checkpointed into the file and removed
    for stale in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        stale.unlink(missing_ok=True)  # the old file's: applied to the new one they would damage it
    os.replace(fresh, path)
    return done
