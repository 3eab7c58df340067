"""A run's backend, and refreshing runs' states from their schedulers (each asked once for all its
unfinished jobs). Kept apart from the service so that `launch status` imports only this: the profile
and recipe models are imported only for a run that needs its profile (not a local one)."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.backends.base import NEVER_STARTS, Backend, get_backend, overall_state
from launcher.errors import UserError
from launcher.runs.registry import Registry, RunRow
from launcher.runs.state import RunState

if TYPE_CHECKING:
    from launcher.config.cluster import ClusterProfile


def profile_of(row: RunRow) -> ClusterProfile:
    """The profile a run was submitted with (kept in launch.json), else the current one by name."""
    from launcher.config.cluster import ClusterProfile, load_cluster
    from launcher.config.schema import validate
    from launcher.runs.launch_info import LaunchInfo

    saved = LaunchInfo.read(Path(row.run_dir)).extra.get("profile")
    if saved:
        return validate(ClusterProfile, saved, f"{row.run_dir}/launch.json")
    try:
        return load_cluster(row.cluster)
    except UserError:
        if row.backend != "local":
            raise
        # the run directory and its profile file are gone: a local run's processes are found from
        # its job id alone, so status and cancel still work
        return ClusterProfile(name=row.cluster, backend="local")


def backend_of(row: RunRow) -> Backend[Any]:
    """The backend of the run's cluster, from the profile it was submitted with."""
    return get_backend(profile_of(row))


def asker_of(row: RunRow) -> Backend[Any]:
    """A backend to ask about the run's jobs: a local run's is built without reading its profile (it
    asks this machine's processes), so a refresh of local runs imports no profile or recipe model."""
    if row.backend == "local":
        from launcher.backends.local import LocalBackend

        return LocalBackend.asking()
    return backend_of(row)


def _warn_line(line: str) -> None:
    sys.stderr.write(f"warning: {line}\n")


def refresh(
    registry: Registry, rows: list[RunRow], warn: Callable[[str], None] = _warn_line, fresh: bool = False
) -> list[RunRow]:
    """Ask each backend once for the states of all unfinished jobs; update the registry.

    A scheduler that does not answer leaves its runs as last seen and `warn` gets its one line;
    `warn` also gets each run that will never start. `fresh`: no answer shared by other processes
    a moment ago (`Backend.fresh`)."""
    pending = [r for r in rows if r.state != RunState.SUBMITTING and not RunState(r.state).is_terminal]
    by_profile: dict[tuple[str, str], list[RunRow]] = defaultdict(list)
    for row in pending:
        by_profile[(row.backend, row.cluster)].append(row)
    for group in by_profile.values():
        try:
            backend = asker_of(group[0])
        except UserError:
            continue
        backend.fresh = fresh
        states = backend.status([job for row in group for job in row.job_ids])
        if backend.unanswered:
            warn(f"cluster {group[0].cluster}: {backend.unanswered}")
        for row in group:
            task_states = {task: states.get(job, RunState.UNKNOWN) for task, job, _ in row.jobs}
            if backend.unanswered and RunState.UNKNOWN in task_states.values():
                continue
            state = overall_state(list(task_states.values()))
            note = backend.explain(row.job_ids[0]) if row.job_ids else None
            if note and note.startswith(NEVER_STARTS):
                warn(f"{row.run_id}: {note}")
            counts = [n for n in (backend.restarts(job) for job in row.job_ids) if n is not None]
            registry.set_state(
                row.run_id, state.value, {t: s.value for t, s in task_states.items()}, note,
                restarts=max(counts) if counts else None,
            )  # fmt: skip
    return [registry.get(r.run_id) or r for r in rows]
