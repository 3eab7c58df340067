"""`launch reeval`: evaluate a training run's complete checkpoints, each as its own eval run.

Planning reads only files (the run directory, results/*/metrics.json) and the registry, under a
lock per run (`planned`) that is held until the evaluations are registered, so two reevals of one
run at once evaluate each checkpoint once; the submit goes through `launching.submit_many`: one
job array on Slurm, parallel jobs on the local backend. Every eval run is registered with parent =
the training run and writes into the training run's `results/<checkpoint>/<eval recipe>/`
(evaluation.results_name), so two eval recipes on one checkpoint both keep their results.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from launcher import paths
from launcher.backends.base import backoff
from launcher.config.cluster import load_cluster
from launcher.config.recipe import Recipe, load_recipe, read_resolved
from launcher.errors import SetupError, UserError
from launcher.kinds.table import KINDS, kind_of
from launcher.runs import cost
from launcher.runs import refresh as refreshing
from launcher.runs import results as evaluation
from launcher.runs import service as launching
from launcher.runs.checkpoints import complete_checkpoints
from launcher.runs.find import find_run
from launcher.runs.registry import Registry, RunRow
from launcher.runs.service import Prepared
from launcher.runs.state import RunState

LOCK = ".reeval.lock"
"""In a training run's directory: held by a reeval from planning until its evaluations are registered."""
SPLIT_KEYS = ("dataset", "path", "test_size", "seed", "validation_size")
"""The data keys that define the held-out split: an eval recipe takes them from the training run."""


@dataclass
class Checkpoint:
    path: Path
    step: int
    results: Path
    fingerprint: str
    status: str = "todo"
    """todo | scored (metrics.json with this fingerprint) | running (an unfinished eval run)."""
    run_id: str | None = None


@dataclass
class Reevaluation:
    """Which complete checkpoints of a training run to evaluate with which eval recipe."""

    run_id: str
    run_dir: Path
    train: Recipe
    eval_recipe: Recipe
    checkpoints: list[Checkpoint]
    aligned: list[str] = field(default_factory=list)
    complete: int = 0

    @property
    def todo(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.status == "todo"]


TRAINING_KINDS = [name for name, kind in KINDS.items() if kind.trains]
"""What a prefix given to reeval or bench means when eval runs share it: the training run."""


def fetch_stored_run(uri: str, every: int | None, last: int | None) -> Path:
    """A local copy (under the runs root) of a run in the store with the checkpoints --every and
    --last pick; only complete ones (COMPLETE marker in the store) are listed and downloaded. An
    endpoint that cannot be reached or does not answer fails the store's short check first."""
    from launcher.artifacts.store import Store

    store = Store(uri)
    store.check()
    stored = store.list_complete_checkpoints(uri)
    steps = [c.step for c in stored if not every or c.step % every == 0]
    if last is not None:
        steps = steps[-last:]
    if not steps:
        raise UserError(f"{uri}: no complete checkpoint in the store (with --every/--last as given)")
    return store.download_run(uri, paths.runs_root(), steps=steps)


def align_split(eval_recipe: Recipe, train: Recipe) -> tuple[Recipe, list[str]]:
    """The eval recipe with the training run's split keys; the keys that had to change."""
    changed = [
        f"data.{k}: {getattr(eval_recipe.data, k)!r} -> {getattr(train.data, k)!r}"
        for k in SPLIT_KEYS
        if getattr(eval_recipe.data, k) != getattr(train.data, k)
    ]
    if not changed:
        return eval_recipe, []
    recipe = eval_recipe.model_copy(deep=True)
    for key in SPLIT_KEYS:
        setattr(recipe.data, key, getattr(train.data, key))
    recipe._source = eval_recipe.source
    return recipe, changed


def _running(registry: Registry, run_id: str, evaluator: str) -> dict[tuple[str, str], str]:
    """{(results dir, fingerprint): eval run id} of this run's unfinished eval runs (job `evaluator`)."""

    children = [r for r in registry.all() if r.parent == run_id and r.job == evaluator]
    children = [r for r in children if not RunState(r.state).is_terminal]
    if not children:
        return {}
    found = {}
    for row in refreshing.refresh(registry, children):
        if RunState(row.state).is_terminal:
            continue
        try:
            recipe = read_resolved(Path(row.run_dir))
        except UserError:
            continue
        results = str(evaluation.results_dir(recipe, Path(row.run_dir)))
        found[(results, evaluation.fingerprint(recipe.model.name_or_path, recipe))] = row.run_id
    return found


def plan(
    registry: Registry,
    ref: str,
    recipe_ref: str | None = None,
    overrides: list[str] | None = None,
    every: int | None = None,
    last: int | None = None,
) -> Reevaluation:
    """Which checkpoints of the run need evaluating with which eval recipe; submits nothing (and
    takes no lock: `planned` plans to submit)."""
    run_id, run_dir = _target(registry, ref, every, last)
    return _plan(registry, run_id, run_dir, recipe_ref, overrides, every, last)


@contextmanager
def planned(
    registry: Registry,
    ref: str,
    recipe_ref: str | None = None,
    overrides: list[str] | None = None,
    every: int | None = None,
    last: int | None = None,
    *,
    lock: bool = True,
    say: Callable[[str], None] = print,
) -> Iterator[Reevaluation]:
    """`plan(...)` under the run's reeval lock (RUN/.reeval.lock), held until the block ends: submit
    inside the block, and another reeval of the run plans once these evaluations are registered, so
    it sees them being evaluated and submits none of them again. `lock=False` (a dry run) takes no
    lock and creates nothing; `say` gets a line while another reeval of the run holds the lock."""
    run_id, run_dir = _target(registry, ref, every, last)
    if not lock:
        yield _plan(registry, run_id, run_dir, recipe_ref, overrides, every, last)
        return
    path = run_dir / LOCK
    try:
        handle = open(path, "a")  # noqa: SIM115 (the with below closes it, which releases the lock)
    except OSError as err:
        raise SetupError(f"{path}: cannot open the reeval lock: {err.strerror or err}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another reeval of {run_id} to finish submitting ({path}) ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as err:  # a file system without locks: plan as before rather than not at all
            say(f"note: {path}: cannot lock ({err.strerror or err}); planning without the lock")
        yield _plan(registry, run_id, run_dir, recipe_ref, overrides, every, last)


def _target(registry: Registry, ref: str, every: int | None, last: int | None) -> tuple[str, Path]:
    """The training run's id and directory (a run in the store is downloaded first)."""
    if every is not None and every < 1:
        raise UserError(f"--every: {every} is not a step count; valid: 1 or more")
    if last is not None and last < 1:
        raise UserError(f"--last: {last} is not a count; valid: 1 or more")
    if ref.startswith("s3://"):
        ref = str(fetch_stored_run(ref, every, last))
    run_id, run_dir, _ = find_run(registry, ref, TRAINING_KINDS)
    return run_id, run_dir


def _plan(
    registry: Registry,
    run_id: str,
    run_dir: Path,
    recipe_ref: str | None,
    overrides: list[str] | None,
    every: int | None,
    last: int | None,
) -> Reevaluation:
    train = evaluation.training_recipe(run_dir)
    if recipe_ref:
        eval_recipe = load_recipe(recipe_ref, overrides or [])
    else:
        eval_recipe = evaluation.default_eval_recipe(train, overrides)
    evaluator = kind_of(train).evaluator
    if eval_recipe.job != evaluator:
        hint = "the training recipe, run with eval.only" if evaluator == train.job else "e.g. ds1.5b_eval"
        raise UserError(
            f"{eval_recipe.source}: job: '{eval_recipe.job}' but reeval of a {train.job} run takes a "
            f"recipe with job: {evaluator} ({hint})"
        )
    if evaluation.self_evaluating(eval_recipe) and not eval_recipe.eval.only:
        source = eval_recipe.source
        eval_recipe = eval_recipe.model_copy(deep=True)  # score the checkpoints, never train again
        eval_recipe.eval.only = True
        eval_recipe._source = source
    eval_recipe, aligned = align_split(eval_recipe, train)
    complete = complete_checkpoints(run_dir)
    chosen = evaluation.select(complete, every, last)
    running = _running(registry, run_id, eval_recipe.job)  # the evaluator, checked above
    checkpoints = []
    digest = evaluation.eval_digest(eval_recipe)  # once, not per checkpoint (a YAML dump each)
    for path in chosen:
        results = evaluation.checkpoint_results(run_dir, path.name, eval_recipe, overrides)
        fp = evaluation.fingerprint(str(path), eval_recipe, digest)
        step = evaluation.checkpoint_step(path) or 0
        ckpt = Checkpoint(path, step, results, fp)
        metrics = evaluation.scored_by(path, results, eval_recipe, fp)
        if metrics is not None:
            ckpt.status, ckpt.run_id = "scored", metrics.get("run_id")
        elif (str(results.resolve()), fp) in running:
            ckpt.status, ckpt.run_id = "running", running[(str(results.resolve()), fp)]
        checkpoints.append(ckpt)
    return Reevaluation(run_id, run_dir, train, eval_recipe, checkpoints, aligned, len(complete))


def prepare(p: Reevaluation, cluster: str, force: bool = False, live_code: bool = False) -> list[Prepared]:
    """One launching.Prepared per checkpoint to evaluate (nothing created yet), each to run the code
    of this process (one snapshot; `live_code`: the packages where they are)."""

    profile = load_cluster(cluster)
    estimate = None
    if not force:
        # planned once, on the architecture the run trained (a LoRA checkpoint has no config.json)
        planned = p.eval_recipe.model_copy(deep=True)
        planned.model.name_or_path = p.train.model.name_or_path
        planned.model.config = planned.model.config or p.train.model.config
        planned._source = p.eval_recipe.source
        estimate = launching.check_plan(planned, profile)
    prepared = []
    for ckpt in p.todo:
        recipe = evaluation.checkpoint_recipe(p.eval_recipe, ckpt.path, ckpt.results)
        one = launching.prepare_loaded(recipe, profile, p.run_id, True, live_code)
        one.gpu_hours, one.force = cost.planned_hours(recipe, estimate), force  # the budget is the caller's
        prepared.append(one)
    return prepared


def dry_run_text(p: Reevaluation, prepared: list[Prepared], max_parallel: int) -> str:
    """What would be submitted: one line per checkpoint, then the one script of them all where the
    backend makes one (`Backend.array_script`), else each run's script."""
    head = [f"# reeval {p.run_id} with {p.eval_recipe.name}: {len(prepared)} evaluation(s)"]
    for x, ckpt in zip(prepared, p.todo, strict=True):
        head.append(f"#   {ckpt.path.name} (step {ckpt.step}) -> {ckpt.results} [run {x.run.run_id}]")
    if not prepared:
        return "\n".join(head) + "\n"
    backend = prepared[0].backend
    requests = [x.request for x in prepared]
    head.append(cost.budget_line([x.gpu_hours for x in prepared], prepared[0].run.profile))
    costs = backend.array_cost(requests, max_parallel)
    head += [costs] if costs else []
    one_script = backend.array_script(requests, max_parallel) if len(requests) > 1 else None
    if one_script is None:
        return "\n".join(head) + "\n\n" + "\n".join(r.describe() for r in requests)
    return "\n".join(head) + "\n\n" + one_script.rstrip() + "\n"


def wait(
    registry: Registry,
    run_ids: list[str],
    on_change: Callable[[RunRow], None],
    poll: float = 1.0,
    on_poll: Callable[[RunRow], None] | None = None,
) -> list[RunRow]:
    """Poll the runs until every one has ended; `on_change(row)` whenever a run's state changes,
    `on_poll(row)` for each running run at every poll. Polls every `poll` seconds, less often the
    longer no state changes (`follow.backoff`)."""

    rows = [r for r in (registry.get(i) for i in run_ids) if r is not None]
    seen: dict[str, str] = {}
    since = time.monotonic()
    while True:
        rows = refreshing.refresh(registry, rows)
        for row in rows:
            if seen.get(row.run_id) != row.state:
                seen[row.run_id] = row.state
                since = time.monotonic()
                on_change(row)
            elif on_poll is not None and row.state == RunState.RUNNING:
                on_poll(row)
        if all(RunState(r.state).is_terminal for r in rows):
            return rows
        time.sleep(backoff(time.monotonic() - since, poll))


def results_of(row: RunRow) -> Path | None:
    """The results directory an eval run writes into."""

    try:
        recipe = read_resolved(Path(row.run_dir))
    except UserError:
        return None
    return evaluation.results_dir(recipe, Path(row.run_dir))
