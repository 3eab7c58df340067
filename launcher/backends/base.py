"""The backend contract: dry-run to a printable Request, submit (one, an array, or after another job),
batched status, logs, cancel. The research loop and the views use backends through this alone."""

from __future__ import annotations

import importlib
import os
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from launcher.backends.spec import FollowOn, LaunchSpec, build_spec
from launcher.runs.cost import Used
from launcher.runs.state import RunState
from launcher.tracking.wandb_mode import redact_env

if TYPE_CHECKING:
    from launcher.config.cluster import ClusterProfile
    from launcher.runs.run import Run

P = TypeVar("P")


def overall_state(states: Sequence[RunState]) -> RunState:
    """One state for a run of several tasks: running while any runs, failed if any failed, ..."""
    if not states:
        return RunState.UNKNOWN
    unique = set(states)
    if len(unique) == 1:
        return states[0]
    for state in (RunState.RUNNING, RunState.PREEMPTED, RunState.PENDING, RunState.UNKNOWN):
        if state in unique:
            return state
    for state in (RunState.FAILED, RunState.TIMEOUT, RunState.CANCELLED):
        if state in unique:
            return state
    return RunState.COMPLETED


@dataclass
class Request(Generic[P]):
    """Everything a submit needs. `materialize()` is the exact script that gets submitted.

    `spec` is what the backend translated; `payload` is the backend's own typed rendering of it
    (sbatch options, supervisor settings, a Ray job). `run` is the launcher's handle on the run
    directory: backends read `spec`, never `run.recipe`.
    """

    run: Run
    spec: LaunchSpec
    script: str
    payload: P

    @property
    def env(self) -> dict[str, str]:
        return self.spec.env

    @property
    def gpus(self) -> int:
        return self.spec.gpus_per_node

    @property
    def name(self) -> str:
        return self.spec.run_id

    def materialize(self) -> str:
        return self.script

    def describe(self) -> str:
        """The script plus the environment the job will see (secrets redacted), for --dry-run."""
        shown = redact_env(self.env)
        env_lines = "\n".join(f"#   {k}={shlex.quote(v)}" for k, v in sorted(shown.items()))
        head = f"# run directory: {self.spec.run_dir}\n# environment passed to the job:\n{env_lines}"
        return f"{self.materialize().rstrip()}\n\n{head}\n"


NEVER_STARTS = "will never start: "
"""How explain() begins for a pending job that the scheduler will never start as asked."""


def backoff(unchanged_s: float, every: float, most: float = 30.0) -> float:
    """How long a `--follow` loop waits before it asks the scheduler again: `every` seconds, then a
    tenth of the time nothing has changed (after a minute unchanged every 6 s), at most `most`."""
    return min(max(every, unchanged_s / 10), max(most, every))


def passthrough_env() -> dict[str, str]:
    """The caller's variables that jobs rely on (tracking, credentials, caches), values as they are."""
    prefixes = ("WANDB_", "AWS_", "HF_", "OPENAI_", "LAUNCH_", "TRANSFORMERS_", "S3_")
    return {k: v for k, v in os.environ.items() if k.startswith(prefixes)}


class Backend(ABC, Generic[P]):
    """One scheduler. Subclasses live in one module each and are listed in BACKENDS."""

    name: str
    unanswered: str | None = None
    """Set by status() when the scheduler did not answer (one line, e.g. "Slurm did not answer in
    10 s; states as last seen"): the UNKNOWN states it returned are no news, not a change."""
    fresh: bool = False
    """status() asks the scheduler itself, not an answer other processes shared a moment ago
    (`launch status --fresh`, a cancel waiting for its jobs to end)."""

    def __init__(self, profile: ClusterProfile) -> None:
        self.profile = profile

    def dryrun(self, run: Run) -> Request[P]:
        """Build the request; pure: no scheduler calls, nothing written."""
        spec = build_spec(run)
        script, payload = self.translate(spec)
        return Request(run, spec, script, payload)

    @abstractmethod
    def translate(self, spec: LaunchSpec) -> tuple[str, P]:
        """The exact script or text to submit for `spec`, and the backend's typed payload."""

    @abstractmethod
    def submit(self, request: Request[P]) -> str:
        """Submit one request (its run directory already exists); return the job id."""

    def check(self, requests: Sequence[Request[P]]) -> None:
        """Checks only the scheduler can answer, before anything is created; raise UserError."""
        return None

    def find_submitted(self, runs: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """After a submit that was interrupted (a signal) or a row left `submitting`: the job id the
        scheduler holds for each (run id, run directory) it knows, found by what the submit named the
        job, so that it is recorded (or cancelled) rather than lost. Default: none can be found."""
        return {}

    def array_limit(self, requests: Sequence[Request[P]], max_parallel: int) -> int:
        """How many of `requests` `submit_array` lets run at once (the backend may lower it)."""
        return max_parallel

    def submit_array(self, requests: Sequence[Request[P]], max_parallel: int) -> list[str]:
        """Submit N requests, at most `max_parallel` running at once; default: one by one.

        A backend that submits them as one job may rewrite each run's submit.sh with what it sent."""
        return [self.submit(r) for r in requests]

    def array_script(self, requests: Sequence[Request[P]], max_parallel: int) -> str | None:
        """What `submit_array` sends for `requests` when it sends one script or spec for all of them
        (for --dry-run; pure); None, the default: it submits them one by one, each its own script."""
        return None

    def array_cost(self, requests: Sequence[Request[P]], max_parallel: int) -> str | None:
        """What `submit_array` of `requests` costs the submitting machine (processes, memory) when
        that is worth stating: `# ...` lines for --dry-run (pure); None, the default: nothing."""
        return None

    @abstractmethod
    def submit_after(self, request: FollowOn, *, after: str) -> str:
        """Submit `request` to run after job `after` (a job of this backend); return its job id.

        `request` waits for `after` to end and reads how it ended itself. A backend that can hold it
        back until `after` completed does so, and drops it when `after` ended any other way (Slurm:
        afterok); the others start it at once (local, Ray). `status` and `cancel` answer for its id
        as for a run's job."""

    @abstractmethod
    def status(self, job_ids: Sequence[str]) -> dict[str, RunState]:
        """States of many jobs in one scheduler query."""

    @abstractmethod
    def logs(self, run_dir: Path, job_id: str, follow: bool = False) -> Iterator[tuple[Path, str]]:
        """(log file, line) of the job's logs (`*.err` is stderr); with follow, until the job ends."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stop the job and everything it started."""

    def cancel_many(self, job_ids: Sequence[str]) -> None:
        """Stop all these jobs (a sweep's points); default: one by one."""
        for job_id in job_ids:
            self.cancel(job_id)

    def explain(self, job_id: str) -> str | None:
        """Why a job is in its state (pending reason, exit code), when the scheduler says."""
        return None

    def restarts(self, job_id: str) -> int | None:
        """How often the scheduler restarted (requeued) the job, as of the last status(); None: unknown."""
        return None

    def gpu_hours(self, runs: Sequence[tuple[Path, Sequence[str]]]) -> list[Used | None]:
        """GPU-hours each (run directory, job ids) used so far, every start of a requeued job
        included, in one query for all; None where not known. Default: none known."""
        return [None] * len(runs)


BACKENDS: dict[str, str] = {
    "local": "launcher.backends.local:LocalBackend",
    "slurm": "launcher.backends.slurm.backend:SlurmBackend",
    "ray": "launcher.backends.ray.backend:RayBackend",
}


def get_backend(profile: ClusterProfile) -> Backend[Any]:
    """Import the profile's backend by name, lazily."""
    module_name, cls_name = BACKENDS[profile.backend].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        from launcher.errors import UserError

        raise UserError(
            f"{profile.source}: backend: '{profile.backend}' is not available here ({err}); "
            "valid: " + ", ".join(b for b in BACKENDS if _available(b))
        ) from None
    backend: Backend[Any] = getattr(module, cls_name)(profile)
    return backend


def _available(name: str) -> bool:
    module_name = BACKENDS[name].split(":")[0]
    return importlib.util.find_spec(module_name) is not None
