"""`launch sync --wandb [--follow]`: bring the offline W&B runs of runs, a sweep, or everything
up to date on W&B, from the login node, while they run and after.

jobs/wandb_run.py starts W&B with `dir=<run_dir>`, so each start of a job (a requeued run starts
again, with the same W&B id) leaves one segment `<run_dir>/wandb/offline-run-<time>-<id>/`.

Why not `wandb sync`: it streams a segment from the start each time it is run (a second sync of a
growing file sends its whole history again, and a file still being written is either refused or,
with `--live`, waited on until the job ends, forever if the job was killed), and it knows nothing
of a run's other segments beyond their order. Instead a pass reads the segments themselves
(launcher.tracking.wandb_offline: one history, each step once, the job flushes its file every few
seconds) and pushes through wandb's own client only the steps W&B does not hold yet
(launcher.tracking.wandb_push: the server says where it stands, so a pass after a failure resumes
where the last stopped). A W&B run is pushed again only when its files grew or the launcher's
story of it changed; `--follow` repeats passes every interval until the runs ended and are synced.

What each pass did is kept in `<run_dir>/wandb-sync.json` ({W&B id: last step on W&B, bytes
read, state pushed, error}): `launch status` names the runs not synced and why. Before a pass
pushes anything, W&B's base URL must answer a short probe (launcher.tracking.wandb_reach).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launcher.errors import SetupError, UserError
from launcher.jsonio import atomic_write_json, read_object
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.registry import Registry, RunRow
from launcher.tracking import STATE_FILE
from launcher.tracking.wandb_mode import redact_text
from launcher.tracking.wandb_reach import base_url, check_reachable

DEFAULT_INTERVAL_S = 30.0


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
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.glob("run-*.wandb"))


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


@dataclass(frozen=True)
class Target:
    """One W&B run of one launcher run: its segments, oldest first."""

    run_id: str
    run_dir: Path
    wandb_id: str
    segments: tuple[Path, ...]

    @property
    def size(self) -> int:
        return sum(OfflineRun(self.run_id, d).size for d in self.segments)


def targets(runs: list[tuple[str, Path]]) -> list[Target]:
    """The W&B runs of `runs` (segments sharing a W&B id are one W&B run), in the order given."""
    found: dict[tuple[str, str], list[Path]] = {}
    dirs = {run_id: run_dir for run_id, run_dir in runs}
    for offline in offline_runs(runs):
        found.setdefault((offline.run_id, offline.wandb_id), []).append(offline.path)
    return [
        Target(run_id, dirs[run_id], wandb_id, tuple(paths)) for (run_id, wandb_id), paths in found.items()
    ]


def read_state(run_dir: Path) -> dict[str, Any]:
    """`<run_dir>/wandb-sync.json`: W&B id -> {step, size, story, error, at} of the last pass."""
    return read_object(run_dir / STATE_FILE) or {}


def _record(target: Target, **entry: Any) -> None:
    state = read_state(target.run_dir)
    found = state.get(target.wandb_id)
    previous: dict[str, Any] = found if isinstance(found, dict) else {}
    state[target.wandb_id] = {**previous, **entry, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_json(target.run_dir / STATE_FILE, state)


def not_synced(run_dir: Path) -> str | None:
    """Why the last pass could not bring a W&B run of `run_dir` up to date; None when it did (or none ran)."""
    errors = [e["error"] for e in read_state(run_dir).values() if isinstance(e, dict) and e.get("error")]
    return errors[0] if errors else None


@dataclass(frozen=True)
class Outcome:
    target: Target
    sent: int = 0
    first: int | None = None
    last: int | None = None
    error: str | None = None


def _one_line(err: BaseException) -> str:
    """wandb's error as one line, an HTTP status it names first (`HTTP 403: ...`), redacted of the
    environment's secrets (before the cut: a reply may echo the key) since it is printed and kept in
    `wandb-sync.json`."""
    lines = [line.strip() for line in redact_text(str(err)).splitlines() if line.strip()]
    line = (lines[0] if lines else type(err).__name__)[:300]
    status = re.search(r"\b(?:error|status|code)\W{0,2}([45]\d\d)\b", line, re.IGNORECASE)
    return f"HTTP {status.group(1)}: {line}" if status else line


def due(target: Target, story: dict[str, Any]) -> bool:
    """Whether W&B may lack something of `target`: its files grew, its story changed, or the last
    pass failed."""
    entry = read_state(target.run_dir).get(target.wandb_id)
    if not isinstance(entry, dict):
        return True
    return bool(entry.get("error")) or entry.get("size") != target.size or entry.get("story") != story


@dataclass
class Selection:
    """What a pass works on: the W&B runs, and the launcher's story of each launcher run."""

    targets: list[Target]
    stories: dict[str, dict[str, Any]]
    """launcher run id -> the `launcher/...` summary keys (state, restarts, last error)"""
    ended: set[str]
    """the launcher runs that ended (their last step is final)"""

    def story(self, target: Target) -> dict[str, Any]:
        return self.stories.get(target.run_id, {})

    @property
    def done(self) -> bool:
        """Every launcher run ended and every W&B run of them is up to date."""
        return self.ended >= set(self.stories) and not any(due(t, self.story(t)) for t in self.targets)


def sync_pass(selection: Selection, report: Callable[[Outcome], None]) -> list[Outcome]:
    """Push every target that is `due`; report each; a SetupError (one line, recorded for each of
    them) when W&B cannot be reached. A target W&B refuses is recorded and reported, the others go on."""
    from launcher.tracking.wandb_offline import read_segment
    from launcher.tracking.wandb_push import push

    due_now = [t for t in selection.targets if due(t, selection.story(t))]
    if not due_now:
        return []
    try:
        check_reachable(base_url())
    except SetupError as err:
        for target in due_now:
            _record(target, error=str(err))
        raise
    outcomes = []
    for target in due_now:
        size, story = target.size, selection.story(target)  # what grows meanwhile is read next pass
        try:
            segments = [s for s in (read_segment(path) for path in target.segments) if s.wandb_id]
            if not segments:  # the job has not flushed the run's start to its file yet
                continue
            pushed = push(segments, story, final=target.run_id in selection.ended)
        except Exception as err:  # wandb's errors are many kinds; each is one line for this run
            outcome = Outcome(target, error=_one_line(err))
            _record(target, error=outcome.error)
        else:
            outcome = Outcome(target, pushed.sent, pushed.first, pushed.last)
            _record(target, step=pushed.last, size=size, story=story, error=None)
        outcomes.append(outcome)
        report(outcome)
    return outcomes


def follow(
    pick: Callable[[], Selection],
    report: Callable[[Outcome], None],
    interval_s: float,
    warn: Callable[[str], None],
) -> None:
    """Passes every `interval_s` seconds over what `pick` returns until every run ended and is up
    to date on W&B; a pass W&B cannot be reached in is one `warn` line, and the next tries again."""
    while True:
        started = time.monotonic()
        selection = pick()
        try:
            sync_pass(selection, report)
        except SetupError as err:
            warn(str(err))
        if selection.done:
            return
        time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
