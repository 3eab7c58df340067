"""`--then`: what runs after a training run without the user's shell: evaluate, then bench.

`validate()` turns the `--then` strings into a ChainSpec before anything is submitted. `attach()`
starts the chain of one submitted training run as a follow-on job of the training job, on the
training run's own backend (`Backend.submit_after`: held back until training completed where the
scheduler can, else started at once).

It runs `python -m launcher.loop.chain --run-dir DIR`: it waits for training to end, submits the
evaluations exactly as `launch reeval RUN --cluster C [--recipe E]` does (reeval.plan/prepare,
launching.submit_many), waits for them, then runs `launch bench RUN_DIR --out RUN_DIR/bench`.

Files: launch.json gets `"then"` (the strings as given) and `"chain": {"backend", "job_id",
"steps"}`; the chain writes `<run_dir>/chain/state.json` ({"state", "reason", "evals", "bench",
"updated_at"}) and its log to `<run_dir>/chain/chain.{out,err}`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launcher import paths
from launcher.backends.base import get_backend
from launcher.backends.spec import FollowOn
from launcher.config.cluster import ClusterProfile, check_fit, load_cluster
from launcher.config.duration import duration_seconds
from launcher.config.recipe import Recipe, load_recipe
from launcher.errors import SetupError, UserError
from launcher.jsonio import atomic_write_json, read_object
from launcher.kinds.table import kind_of
from launcher.loop import reeval
from launcher.runs import refresh as refreshing
from launcher.runs import results as evaluation
from launcher.runs import service as launching
from launcher.runs.code import code_variables, live_search_path, split_path, working_directory
from launcher.runs.launch_info import ChainInfo, ChainStep, LaunchInfo
from launcher.runs.registry import Registry, RunRow
from launcher.runs.state import ChainState, RunState

VALID = "reeval[=EVAL_RECIPE][@CLUSTER], bench (after a reeval)"
MAX_PARALLEL = 8
"""Evaluations at once, as `launch reeval` defaults to."""
DEFAULT_MINUTES = 24 * 60
"""The chain job's time limit when the profile sets no limits.max_time: it waits for its evaluations."""
"""A chain state after which nothing more happens."""


@dataclass
class Step:
    """One `--then` value: `reeval` (with its eval recipe and cluster, None: the defaults) or `bench`."""

    text: str
    kind: str
    recipe: str | None = None
    cluster: str | None = None


@dataclass
class ChainSpec:
    then: list[str]
    steps: list[Step]

    @property
    def reevals(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "reeval"]

    @property
    def bench(self) -> bool:
        return any(s.kind == "bench" for s in self.steps)


def _refuse(text: str, why: str) -> UserError:
    return UserError(f"--then {text}: {why.splitlines()[0] if why else ''}")


def parse_step(text: str) -> Step:
    """`reeval`, `reeval=E`, `reeval@C`, `reeval=E@C` or `bench`; anything else is a UserError."""
    head, _, cluster = text.partition("@")
    kind, _, recipe = head.partition("=")
    kind = kind.strip()
    if kind == "bench" and text.strip() == "bench":
        return Step(text, "bench")
    if kind != "reeval" or ("=" in head and not recipe) or ("@" in text and not cluster):
        raise _refuse(text, f"not a step; valid: {VALID}")
    return Step(text, "reeval", recipe or None, cluster or None)


def _eval_recipes(evaluator: str | None) -> list[str]:
    """Names of the catalogue's recipes whose job is `evaluator` (for the error's valid list)."""
    import yaml

    names = []
    for name, path in sorted(paths.catalog("recipes").items()):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("job") == evaluator:
            names.append(name)
    return names


def validate(then: list[str], train: Recipe, profile: ClusterProfile) -> ChainSpec:
    """Check every `--then` value against the training recipe and cluster; creates nothing.

    The eval recipe must load and be of the training kind's evaluator job, the eval cluster must
    load and hold the eval recipe; `bench` needs a reeval before it (every backend runs a chain)."""

    steps = [parse_step(t) for t in then]
    kind = kind_of(train)
    evaluator = kind.evaluator
    first = next((s for s in steps if s.kind == "reeval"), None)
    if first is not None and (not kind.trains or evaluator is None or train.eval.only):
        what = f"{train.job} runs with eval.only" if kind.trains and evaluator else f"{train.job} runs"
        raise _refuse(
            first.text, f"{train.name} is a {train.job} recipe and {what} write no checkpoints, so there "
            "is nothing to evaluate after it; drop --then (a chain follows a training recipe)"
        )  # fmt: skip
    for i, step in enumerate(steps):
        if step.kind == "bench":
            if not any(s.kind == "reeval" for s in steps[:i]):
                raise _refuse(step.text, "needs a reeval step before it; valid: --then reeval --then bench")
            continue
        try:
            recipe = load_recipe(step.recipe) if step.recipe else evaluation.default_eval_recipe(train)
            where = load_cluster(step.cluster) if step.cluster else profile
        except UserError as err:
            raise _refuse(step.text, str(err)) from None
        if recipe.job != evaluator:
            valid = ", ".join(_eval_recipes(evaluator)) or f"a recipe with job: {evaluator}"
            raise _refuse(
                step.text, f"recipe {recipe.name} has job: {recipe.job} but a {train.job} run is "
                f"evaluated by job: {evaluator}; valid: {valid}"
            )  # fmt: skip
        try:
            check_fit(recipe, where)
        except UserError as err:
            raise _refuse(step.text, str(err)) from None
        step.recipe = _ref(step.recipe, recipe.source)
        step.cluster = _ref(step.cluster or where.name, where.source, "clusters")
    return ChainSpec(list(then), steps)


def _ref(ref: str | None, source: str, kind: str = "recipes") -> str | None:
    """What the chain process loads: a catalogue name as it is, else the file's absolute path."""
    if ref is None or (not paths.looks_like_path(ref) and ref in paths.catalog(kind)):
        return ref
    return str(Path(source).resolve()) if Path(source).is_file() else ref


def describe(spec: ChainSpec) -> str:
    """`then: reeval=tiny_ner_eval@dev-slurm, bench` (for --dry-run and status)."""
    return "then: " + ", ".join(spec.then)


# ---------------------------------------------------------------- starting a chain


def chain_dir(run_dir: Path) -> Path:
    return run_dir / "chain"


def _code(info: LaunchInfo) -> tuple[dict[str, str], Path, Path | None]:
    """The training run's code as its chain runs it: (variables, working directory, snapshot).

    The chain runs the run's own snapshot (its PYTHONPATH, PYTHONSAFEPATH and LAUNCH_CODE as the
    job got them), in the run's working directory; so do the evaluations it submits, which plan the
    code they run from what the chain imported (the same snapshot, found again by its hash)."""
    code = info.code
    workdir = Path(code.workdir) if code and code.workdir else working_directory()
    if code is not None and code.path:
        entries = [code.path]
    elif code is not None and code.live:
        entries = list(dict.fromkeys(str(Path(p).parent) for p in code.packages))
    else:  # a run from before snapshots: the packages this process runs, live
        entries = live_search_path()
    given = split_path(os.environ.get("PYTHONPATH", ""))
    variables = code_variables(entries, given, (code.snapshot if code else None) or "live")
    return variables, workdir, Path(code.path) if code and code.path else None


def _env(info: LaunchInfo) -> dict[str, str]:
    """What the chain needs of the submitting shell: the run's code first, the same registry and
    runs root (secrets reach it the way its backend passes the submitting environment on)."""
    return {
        **_code(info)[0],
        "LAUNCH_HOME": str(paths.launch_home().resolve()),
        "LAUNCH_RUNS": str(paths.runs_root()),
    }


def _follow_on(row: RunRow, profile: ClusterProfile) -> FollowOn:
    """The chain of a training run, as its backend submits it."""
    run_dir = Path(row.run_dir)
    limit = duration_seconds(profile.limits.max_time) // 60 if profile.limits.max_time else DEFAULT_MINUTES
    info = LaunchInfo.read(run_dir)
    _, workdir, code_dir = _code(info)
    return FollowOn(
        name=f"{row.run_id}-chain", title=f"recipe-launcher chain of run {row.run_id}", run_id=row.run_id,
        run_dir=run_dir, folder=chain_dir(run_dir), stem="chain", module="launcher.loop.chain",
        args=("--run-dir", str(run_dir)), env=_env(info), minutes=limit, workdir=workdir, code_dir=code_dir,
    )  # fmt: skip


def attach(registry: Registry, run_id: str, spec: ChainSpec) -> str:
    """Start the chain of a submitted training run (job ids recorded); returns the chain's job id.
    A sweep calls this once per point, after its submit."""

    row = registry.get(run_id)
    if row is None or not row.job_ids:
        raise SetupError(f"{run_id}: no submitted training job to chain after")
    run_dir = Path(row.run_dir)
    profile = refreshing.profile_of(row)
    chain_dir(run_dir).mkdir(exist_ok=True)
    write_state(run_dir, "waiting", reason="for training to end")
    steps = [ChainStep(**asdict(s)) for s in spec.steps]
    LaunchInfo.update(run_dir, then=spec.then, chain=ChainInfo(backend=profile.backend, steps=steps))
    try:
        job_id = get_backend(profile).submit_after(_follow_on(row, profile), after=row.job_ids[0])
    except (UserError, SetupError) as err:
        write_state(run_dir, "not started", reason=str(err).splitlines()[0])
        raise SetupError(
            f"{run_id} was submitted (job {row.job_ids[0]}) but its chain was not: {err}; "
            f"`launch reeval {run_id} --cluster C` evaluates it once it ends"
        ) from None
    chain = LaunchInfo.read(run_dir).chain or ChainInfo(backend=profile.backend, steps=steps)
    LaunchInfo.update(run_dir, chain=chain.model_copy(update={"job_id": job_id}))
    return job_id


def attach_many(registry: Registry, run_ids: list[str], spec: ChainSpec) -> tuple[list[str], list[str]]:
    """`attach` for each run of a sweep, one chain per point: (the chains' job ids, one line per
    point whose chain could not be submitted). A failure never keeps the later points' chains back."""
    job_ids, failures = [], []
    for run_id in run_ids:
        try:
            job_ids.append(attach(registry, run_id, spec))
        except (UserError, SetupError) as err:
            failures.append(str(err).splitlines()[0])
    return job_ids, failures


# ---------------------------------------------------------------- the chain's state


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_state(run_dir: Path) -> dict[str, Any]:
    return read_object(chain_dir(run_dir) / "state.json") or {}


def write_state(run_dir: Path, state: str, **changes: Any) -> None:
    data = {**read_state(run_dir), **changes, "state": state, "updated_at": _now()}
    atomic_write_json(chain_dir(run_dir) / "state.json", data)


@dataclass
class ChainStatus:
    """Where a run's chain stands: state, why, its eval run ids, the bench table's path."""

    then: list[str]
    state: str
    reason: str | None = None
    job_id: str | None = None
    backend: str | None = None
    evals: list[str] = field(default_factory=list)
    bench: str | None = None
    submitted: bool = False
    """Every evaluation is submitted (`evals` is complete)."""

    @property
    def ended(self) -> bool:
        return self.state in {s.value for s in ChainState if s.is_ended}


def _job_ended(run_dir: Path, job_id: str) -> str | None:
    """The state of the chain's own job once its backend says it ended (None: it lives, or the
    backend cannot say)."""

    row = Registry().get(LaunchInfo.read(run_dir).run_id)
    if row is None:
        return None
    try:
        state = refreshing.backend_of(row).status([job_id]).get(job_id, RunState.UNKNOWN)
    except UserError:
        return None
    return state.value if state.is_terminal else None


def status(run_dir: Path, training_state: str | None = None) -> ChainStatus | None:
    """The chain of a training run, None when it has none. A chain still waiting for a training run
    that failed is `not started` (its job ends without starting, or its backend drops it); one whose
    job ended without saying how (killed, a crash before it wrote its state) is `failed`."""
    info = LaunchInfo.read(run_dir)
    if not info.then:
        return None
    chain = info.chain
    data = read_state(run_dir)
    found = ChainStatus(
        list(info.then), str(data.get("state", "waiting")), data.get("reason"),
        chain.job_id if chain else None, chain.backend if chain else None,
        list(data.get("evals") or []), data.get("bench"), bool(data.get("submitted")),
    )  # fmt: skip
    failed_training = training_state in ("failed", "cancelled", "timeout")
    if found.state == "waiting" and failed_training:
        found.state, found.reason = "not started", f"training {training_state}"
        return found
    gone = _job_ended(run_dir, found.job_id) if not found.ended and found.job_id and found.backend else None
    if gone is not None:
        data = read_state(run_dir)  # it may have written its last state since it was read above
        if str(data.get("state")) in {s.value for s in ChainState if s.is_ended}:
            found.state, found.reason = str(data["state"]), data.get("reason")
        else:
            found.state, found.reason = "failed", f"its job {found.job_id} ended ({gone}) unfinished"
    elif found.state == "waiting" and training_state == "completed":
        found.reason = "training completed; the chain is starting"
    return found


def chain_lines(run_dir: Path, training_state: str | None = None) -> list[str]:
    """`launch status RUN`: 2-3 lines on the run's chain; [] when it has none."""
    found = status(run_dir, training_state)
    if found is None:
        return []
    job = f", job {found.job_id}" if found.job_id else ""
    why = f" ({found.reason})" if found.reason else ""
    lines = [f"chain: {found.state}{why}", f"chain steps: {', '.join(found.then)}{job}"]
    if found.evals:
        lines.append(f"chain evals: {', '.join(found.evals)}")
    if found.bench:
        lines.append(f"chain bench: {found.bench}")
    return lines


def cancel(registry: Registry, row: RunRow) -> str | None:
    """Stop a run's chain and the evaluations it submitted that have not ended; its new state."""

    run_dir = Path(row.run_dir)
    found = status(run_dir)
    if found is None:
        return None
    # as the chain itself last said (not as derived from its job, which the scheduler may have
    # dropped with the training job): a chain that had not ended is cancelled, as status then says
    recorded = str(read_state(run_dir).get("state", "waiting"))
    if recorded in {s.value for s in ChainState if s.is_ended}:
        return recorded
    if found.job_id and _job_ended(run_dir, found.job_id) is None:
        refreshing.backend_of(row).cancel(found.job_id)  # waits until it ended
    for eval_id in found.evals:
        child = registry.get(eval_id)
        if child is not None and not RunState.ended(child.state):
            launching.cancel(registry, child)
    write_state(run_dir, "cancelled", reason="launch cancel")
    return "cancelled"


# ---------------------------------------------------------------- running a chain


def _wait_training(registry: Registry, run_id: str, poll: float = 2.0) -> RunRow:

    while True:
        row = registry.get(run_id)
        if row is None:
            raise SetupError(f"{run_id}: not in the registry {registry.path}")
        row = refreshing.refresh(registry, [row])[0]
        if RunState.ended(row.state):
            return row
        time.sleep(poll)


def _submit_evals(
    registry: Registry, row: RunRow, step: Step, log: Callable[[str], None]
) -> tuple[list[str], int]:
    """`launch reeval RUN --cluster C [--recipe E]` of one step, under the run's reeval lock as
    `launch reeval` plans (a manual reeval at the same moment evaluates nothing twice): (the eval
    run ids to wait for, checkpoints scored). An evaluation another reeval is running is waited for
    too, so the table holds its result."""

    with reeval.planned(registry, row.run_id, step.recipe, say=log) as plan:
        others = []
        for ckpt in plan.checkpoints:
            if ckpt.status != "todo":
                log(f"skip {ckpt.path.name}: {ckpt.status} by {plan.eval_recipe.name} ({ckpt.run_id or '?'})")
            if ckpt.status == "running" and ckpt.run_id:
                others.append(ckpt.run_id)
        if not plan.todo:
            return others, len(plan.checkpoints)
        code = LaunchInfo.read(Path(row.run_dir)).code
        prepared = reeval.prepare(plan, step.cluster or row.cluster, live_code=bool(code and code.live))
        job_ids = launching.submit_many(prepared, registry, MAX_PARALLEL, parent=plan.run_id)
    ids = [p.run.run_id for p in prepared]
    log(f"submitted {len(ids)} evaluation(s) with {plan.eval_recipe.name}: job(s) {', '.join(job_ids)}")
    return [*others, *ids], len(plan.checkpoints)


def run(run_dir: Path, log: Callable[[str], None] = print) -> int:
    """The chain itself: wait for training, evaluate, bench. 0 only when all of it succeeded."""

    info = LaunchInfo.read(run_dir)
    steps = [Step(**s.model_dump()) for s in (info.chain.steps if info.chain else [])]
    registry = Registry()

    def on_term(signum: int, _frame: object) -> None:
        write_state(run_dir, "cancelled", reason=f"signal {signum}")
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    write_state(run_dir, "waiting", reason="for training to end")
    row = _wait_training(registry, info.run_id)
    if row.state != RunState.COMPLETED.value:
        write_state(run_dir, "not started", reason=f"training {row.state}")
        log(f"training {row.state}: no evaluation")
        return 1
    evals: list[str] = []
    write_state(run_dir, "evaluating", reason="submitting evaluations", evals=evals)
    scored = 0
    try:
        for step in [s for s in steps if s.kind == "reeval"]:
            ids, n = _submit_evals(registry, row, step, log)
            evals += ids
            scored += n
            write_state(run_dir, "evaluating", reason=f"{len(evals)} evaluation(s) submitted", evals=evals)
    except (UserError, SetupError) as err:
        write_state(run_dir, "failed", reason=f"reeval: {err}")
        log(f"error: {err}")
        return 1
    if not scored:
        write_state(run_dir, "failed", reason="training left no complete checkpoint")
        return 1
    write_state(run_dir, "evaluating", reason=f"waiting for {len(evals)} evaluation(s)", submitted=True)
    rows = reeval.wait(registry, evals, lambda r: log(f"{r.run_id}: {r.state}"), poll=2.0)
    failed = [r.run_id for r in rows if r.state != RunState.COMPLETED.value]
    # no table of nothing; with no evaluation submitted, every checkpoint was scored before: bench those
    if any(s.kind == "bench" for s in steps) and (len(failed) < len(rows) or not rows):
        write_state(run_dir, "bench", reason="building the table")
        out = run_dir / "bench"
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.cli", "bench", str(run_dir), "--out", str(out)],
            capture_output=True, text=True, env={**os.environ, **_env(info)},
        )  # fmt: skip
        (chain_dir(run_dir) / "bench.txt").write_text(proc.stdout)
        log(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
            write_state(run_dir, "failed", reason=f"bench: {lines[-1]}")
            return 1
        write_state(run_dir, "bench", bench=str(out / "benchmark.md"))
    if failed:
        write_state(run_dir, "failed", reason=f"{len(failed)} of {len(rows)} evaluation(s) did not complete")
        return 1
    done = f"{len(rows)} evaluation(s) completed" if rows else f"{scored} checkpoint(s) were scored already"
    write_state(run_dir, "completed", reason=done)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="recipe-launcher chain: evaluate, then bench, after training"
    )
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        return run(args.run_dir.resolve(), lambda line: print(line, flush=True))
    except (UserError, SetupError) as err:
        write_state(args.run_dir.resolve(), "failed", reason=str(err).splitlines()[0])
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:  # the traceback goes to chain.err; status says the one line
        write_state(args.run_dir.resolve(), "failed", reason=f"{type(err).__name__}: {err}".splitlines()[0])
        raise


if __name__ == "__main__":
    sys.exit(main())
