"""What the verbs do, apart from printing: prepare, submit and cancel runs (refreshing them is
`launcher.runs.refresh`)."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher import paths
from launcher.backends.base import Backend, Request, get_backend
from launcher.config.checks import check_inputs
from launcher.config.cluster import ClusterProfile, check_fit, load_cluster
from launcher.config.recipe import Recipe, load_recipe
from launcher.errors import SetupError, UserError, choices_text, did_you_mean
from launcher.kinds.custom import check_job_module
from launcher.kinds.table import implemented_jobs, kind_of
from launcher.runs import cost
from launcher.runs.code import plan as plan_code
from launcher.runs.launch_info import LaunchInfo
from launcher.runs.refresh import backend_of, refresh
from launcher.runs.registry import Registry, RunRow
from launcher.runs.run import Run
from launcher.runs.state import RunState

if TYPE_CHECKING:
    from launcher.plan.report import Plan


@dataclass
class Prepared:
    run: Run
    backend: Backend[Any]
    request: Request[Any]
    gpu_hours: cost.Planned = cost.NOTHING
    force: bool = False
    """--force: submitted even when the planner says no fit or it is over limits.max_gpu_hours."""


def check_job(recipe: Recipe) -> None:
    """A recipe whose job module does not exist yet is refused before anything is created; a lab's
    own job module must be found and runnable with `--run-dir` (launcher/kinds/custom.py)."""
    kind = kind_of(recipe)
    if kind.custom:
        check_job_module(kind.module, recipe.at("job"))
    elif not kind.implemented:
        valid = implemented_jobs()
        raise UserError(
            f"{recipe.at('job')}: '{recipe.job}' has no job module (jobs/{recipe.job}.py) in this "
            f"version{did_you_mean(recipe.job, valid)}; valid: {choices_text(valid)}"
        )


class DoesNotFit(UserError):
    """The planner's verdict is no; `plan` holds the full estimate for printing."""

    def __init__(self, message: str, plan: object) -> None:
        super().__init__(message)
        self.plan = plan


def check_plan(recipe: Recipe, profile: ClusterProfile) -> Plan | None:
    """Refuse a recipe that the planner says will not fit the cluster's GPUs; the plan."""
    if importlib.util.find_spec("launcher.plan") is None:
        return None
    from launcher.plan import plan

    estimate = plan(recipe, profile)
    if not estimate.fits:
        raise DoesNotFit(
            f"{recipe.at('resources')}: needs {estimate.per_gpu_gib:.1f} GiB per GPU but the GPUs of "
            f"cluster '{profile.name}' have {estimate.gpu_gib or 0:.1f} GiB; see the plan above, "
            "or submit anyway with --force",
            estimate,
        )
    return estimate


def prepare(
    recipe_ref: str,
    cluster_ref: str,
    overrides: list[str] | None = None,
    parent: str | None = None,
    force: bool = False,
    live_code: bool = False,
) -> Prepared:
    """Validate everything and build the request; creates nothing."""
    recipe = load_recipe(recipe_ref, overrides or [])
    profile = load_cluster(cluster_ref)
    return prepare_loaded(recipe, profile, parent, force, live_code)


def prepare_loaded(
    recipe: Recipe,
    profile: ClusterProfile,
    parent: str | None = None,
    force: bool = False,
    live_code: bool = False,
) -> Prepared:
    """`prepare` of a loaded recipe; the run's code is planned (hashed) here, stored at submit
    (`live_code`: the packages where they are, no snapshot)."""
    check_fit(recipe, profile)
    check_inputs(recipe)
    check_job(recipe)
    estimate = None if force else check_plan(recipe, profile)
    backend = get_backend(profile)
    root = paths.runs_root()
    run = Run.new(recipe, profile, root=root, parent=parent, code=plan_code(recipe, root, live_code))
    return Prepared(run, backend, backend.dryrun(run), cost.planned_hours(recipe, estimate), force)


def check_budget(prepared: Sequence[Prepared]) -> None:
    """Refuse a submission over its profile's limits.max_gpu_hours (one line; not with --force)."""
    if prepared and not any(p.force for p in prepared):
        cost.check_budget([p.gpu_hours for p in prepared], prepared[0].run.profile)


def check_store(recipe: Recipe) -> None:
    """An s3:// artifacts.uri must answer with its bucket before a run is created (not on --dry-run,
    which stays free of network calls)."""
    if recipe.artifacts.uri:
        from launcher.artifacts.uploads import check_artifacts  # boto3 only when a store is named

        check_artifacts(recipe)


COLLISION_ATTEMPTS = 5


def _claim(prepared: Prepared, registry: Registry, parent: str | None = None) -> LaunchInfo:
    """Register the run (state `submitting`) and create its directory, under a fresh run id when
    the planned one is taken (the request is rebuilt for the new id). Nothing is left on failure."""
    for _ in range(COLLISION_ATTEMPTS):
        run = prepared.run
        run.parent = parent or run.parent
        try:
            _add_row(registry, run)
        except sqlite3.IntegrityError:  # the id is in the registry already
            _replan(prepared)
            continue
        try:
            return run.create(prepared.request.materialize())
        except FileExistsError:  # the directory exists, registered or not
            registry.remove(run.run_id)
            _replan(prepared)
        except BaseException as err:
            shutil.rmtree(run.run_dir, ignore_errors=True)
            registry.remove(run.run_id)
            if isinstance(err, OSError):
                why = err.strerror or err
                raise SetupError(f"{run.run_dir}: cannot write the run directory: {why}") from None
            raise
    raise SetupError(f"no free run id for {prepared.run.recipe.name} after {COLLISION_ATTEMPTS} tries")


def _replan(prepared: Prepared) -> None:
    old = prepared.run
    fresh = Run.new(old.recipe, old.profile, root=old.run_dir.parent, parent=old.parent)
    prepared.run = replace(old, run_id=fresh.run_id, run_dir=fresh.run_dir)  # keeps the sweep fields
    prepared.request = prepared.backend.dryrun(prepared.run)


def _add_row(registry: Registry, run: Run) -> None:
    registry.add(
        run.run_id, run.recipe.name, run.profile.name, run.profile.backend, run.recipe.job,
        run.run_dir, [], state=RunState.SUBMITTING.value, parent=run.parent,
    )  # fmt: skip


def _forget(registry: Registry, runs: Sequence[Run]) -> None:
    """Undo `_claim` after a failed submit: no directory, no row."""
    for run in runs:
        shutil.rmtree(run.run_dir, ignore_errors=True)
        with contextlib.suppress(sqlite3.Error):  # else the row stays `submitting`: what happened
            registry.remove(run.run_id)


def submit(prepared: Prepared, registry: Registry) -> str:
    """Register the run (`submitting`), create its directory, submit, record the job id. A failed
    submit leaves nothing behind; a failure after it leaves a row that says what happened."""
    check_budget([prepared])
    backend = prepared.backend
    backend.check([prepared.request])
    check_store(prepared.run.recipe)
    prepared.run.planned_code.store()
    info = _claim(prepared, registry)
    try:
        job_id = backend.submit(prepared.request)
    except BaseException as err:
        _undo(registry, backend, [(prepared.run, info)], err)
        raise
    with _signals_held():
        _record(registry, prepared.run, info, [job_id])
    return job_id


def _undo(
    registry: Registry, backend: Backend[Any], claimed: Sequence[tuple[Run, LaunchInfo]], err: BaseException
) -> None:
    """After a failed submit: nothing left behind. After an interrupted one (a signal, Ctrl-C), the
    jobs that reached the scheduler anyway are recorded (found by name) and the rest forgotten."""
    found: dict[str, str] = {}
    if isinstance(err, SystemExit | KeyboardInterrupt):
        with contextlib.suppress(Exception):
            found = backend.find_submitted([(run.run_id, run.run_dir) for run, _ in claimed])
    _forget(registry, [run for run, _ in claimed if run.run_id not in found])
    for run, info in claimed:
        if run.run_id in found:
            with contextlib.suppress(SetupError):
                _record(registry, run, info, [found[run.run_id]])


def submit_many(
    prepared: Sequence[Prepared], registry: Registry, max_parallel: int, parent: str | None = None
) -> list[str]:
    """Submit runs of one cluster profile together (one Slurm job array), at most `max_parallel`
    at once; one registry row per run, written before the submit. A failed submit leaves nothing."""
    if not prepared:
        return []
    backend = prepared[0].backend
    if len({p.run.profile.name for p in prepared}) > 1:
        raise ValueError("submit_many: all runs must use one cluster profile")
    check_budget(prepared)
    backend.check([p.request for p in prepared])
    for p in prepared:
        check_store(p.run.recipe)
    for p in prepared:  # one snapshot for a whole sweep: stored once, then found
        p.run.planned_code.store()
    claimed: list[tuple[Prepared, LaunchInfo]] = []
    try:
        for p in prepared:
            claimed.append((p, _claim(p, registry, parent)))
    except BaseException:
        _forget(registry, [p.run for p, _ in claimed])
        raise
    try:
        job_ids = backend.submit_array([p.request for p in prepared], max_parallel)
    except BaseException as err:
        _undo(registry, backend, [(p.run, info) for p, info in claimed], err)
        raise
    with _signals_held():  # submitted: every job id is recorded before a signal can end this
        for (p, info), job_id in zip(claimed, job_ids, strict=True):
            _record(registry, p.run, info, [job_id])
    return job_ids


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT wait until the block ends (then act as usual)."""
    held = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _record(registry: Registry, run: Run, info: LaunchInfo, job_ids: list[str]) -> None:
    """The job ids of a submitted run, in launch.json first (beside the job), then the registry."""
    try:
        LaunchInfo.update(run.run_dir, job_ids=job_ids)  # its profile is in launch.json from the start
        registry.record_jobs(run.run_id, job_ids)
    except (OSError, sqlite3.Error) as err:
        raise SetupError(
            f"{run.run_id} was submitted as job {', '.join(job_ids)} but recording it failed: {err}; "
            f"`launch cancel {run.run_id}` or the scheduler's own cancel stops it"
        ) from None


def finished(state: str) -> bool:
    """True for a terminal state (a row still `submitting` is not finished)."""
    return RunState(state).is_terminal


def cancel(registry: Registry, row: RunRow, unanswered: Callable[[str], None] | None = None) -> RunState:
    """Cancel every unfinished job of the run; its state after. A scheduler that took the cancel
    but then did not answer leaves the state as last seen and tells `unanswered` why."""
    if row.state == RunState.SUBMITTING:
        return _end_submitting(registry, row, unanswered)
    backend = backend_of(row)
    backend.fresh = True
    states = backend.status(row.job_ids)
    backend.cancel_many([j for j in row.job_ids if not states.get(j, RunState.UNKNOWN).is_terminal])
    silent = backend.unanswered
    state = RunState(refresh(registry, [row], fresh=True)[0].state)
    if silent and unanswered is not None and not state.is_terminal:
        unanswered(silent.removesuffix("; states as last seen"))
    return state


def cancel_many(registry: Registry, rows: Sequence[RunRow]) -> dict[str, RunState]:
    """Cancel the unfinished jobs of many runs (a sweep's points) with one cancel per backend, the
    queued ones first (none of them then starts in a slot a cancelled running one frees); each
    run's state after. Rows still `submitting` are ended one by one (`cancel`)."""
    by_profile: dict[tuple[str, str], list[RunRow]] = defaultdict(list)
    for row in rows:
        if row.state != RunState.SUBMITTING and not RunState(row.state).is_terminal:
            by_profile[(row.backend, row.cluster)].append(row)
    for group in by_profile.values():
        backend = backend_of(group[0])
        backend.fresh = True
        jobs = [job for row in group for job in row.job_ids]
        states = backend.status(jobs)
        open_jobs = [j for j in jobs if not states.get(j, RunState.UNKNOWN).is_terminal]
        open_jobs.sort(key=lambda j: states.get(j) != RunState.PENDING)
        backend.cancel_many(open_jobs)
    after = {r.run_id: RunState(r.state) for r in refresh(registry, list(rows), fresh=True)}
    for row in rows:
        if row.state == RunState.SUBMITTING:
            after[row.run_id] = cancel(registry, row)
    return after


def _end_submitting(registry: Registry, row: RunRow, unanswered: Callable[[str], None] | None) -> RunState:
    """A row still `submitting` (its launcher was killed while submitting): the scheduler is asked
    for a job of the run first (a scheduler that cannot be asked is the error); one found is
    recorded and cancelled like any run's job, else the row ends `cancelled`."""
    found = backend_of(row).find_submitted([(row.run_id, Path(row.run_dir))])
    if row.run_id in found:
        registry.record_jobs(row.run_id, [found[row.run_id]])
        return cancel(registry, registry.get(row.run_id) or row, unanswered)
    note = "cancelled while being submitted; no job of it had reached the scheduler"
    registry.set_state(row.run_id, RunState.CANCELLED.value, note=note)
    return RunState.CANCELLED


def used_gpu_hours(rows: Sequence[RunRow]) -> dict[str, float | None]:
    """{run id: GPU-hours used so far} (None: unknown): recorded in usage.json once a run ended,
    else asked of its backend, one query per cluster; an ended run's final answer is recorded."""
    out: dict[str, float | None] = {}
    ask: dict[tuple[str, str], list[RunRow]] = defaultdict(list)
    for row in rows:
        out[row.run_id] = cost.recorded(Path(row.run_dir))
        if out[row.run_id] is None and row.job_ids and row.state != RunState.SUBMITTING:
            ask[(row.backend, row.cluster)].append(row)
    for group in ask.values():
        try:
            backend = backend_of(group[0])
            answers = backend.gpu_hours([(Path(r.run_dir), r.job_ids) for r in group])
        except UserError:  # a scheduler that cannot answer: unknown, asked again next time
            continue
        for row, used in zip(group, answers, strict=True):
            out[row.run_id] = used.hours if used is not None else None
            if used is not None and used.final and finished(row.state):
                with contextlib.suppress(OSError):
                    cost.record(Path(row.run_dir), used.hours, backend.name)
    return out
