"""Ray backend: every run is one Ray job, submitted through the Ray Jobs API.

Addresses (`ray.address` of the profile):
  local          a head on this machine at http://127.0.0.1:<ray.dashboard_port>. Submitting starts
                 one when none answers (`ray start --head`, dashboard on loopback, `ray.num_cpus`
                 or all CPUs, `ray.num_gpus` logical GPUs or the detected ones, a 200 MB object
                 store); a running head is reused. `status`, `logs` and `cancel` never start one.
  http(s)://h:p  an existing cluster's dashboard, which serves the Jobs API (`host:port` alone
                 means http).
  ray://h[:p]    a Ray Client address; the Jobs API is not served there, so it is mapped to
                 http://h:<ray.dashboard_port> (8265 unless the profile says otherwise).

A job is `python -m launcher.backends.ray.agent job --run-dir DIR --time-limit S -- <command>`
where the command is the one the local backend runs (`python -m jobs.<job> --run-dir DIR`, or
torchrun for a train job on several GPUs). The wrapper copies the job's output into
`DIR/logs/task0.{out,err}` (and into Ray's job log), enforces the time limit (exit 124, shown as
timeout) and records the outcome in `DIR/.ray_exit.json`. Resources become
`entrypoint_num_gpus` (gpus_per_node), `entrypoint_num_cpus` (cpus_per_gpu x GPUs) and
`entrypoint_memory` (mem_gb); Ray sets CUDA_VISIBLE_DEVICES for the GPUs it hands out. A job runs
on one node: `resources.nodes` > 1 is refused.

Code and data: with `ray.working_dir: upload` (the default) the project directory is the job's
runtime_env `working_dir`: Ray zips it (honouring .gitignore, minus EXCLUDES and the runs root)
and stores it in the cluster once per content hash, so the nodes need no checkout, only a Python
environment with the job's packages. With `shared` nothing is uploaded: the entrypoint `cd`s into
the project, which must sit at the same path on every node. Either way the job reads and writes
its run directory by absolute path: with a head on this machine that just works; on a remote
cluster the runs root ($LAUNCH_RUNS) must be a filesystem shared at the same path by this machine
and the nodes (the wrapper fails with exit 2 and says so otherwise).

Environment: the job gets the LaunchSpec environment through runtime_env `env_vars`, and the
submitting shell's `passthrough_env()` (W&B, AWS, HF, ... keys) through a 0600 file beside the run
directory that the wrapper reads and deletes (`ray_agent.take_secrets`): Ray writes runtime_env to
its session logs and serves it from the Jobs API, so secrets never go there. submit.sh holds the
job spec as YAML with the secrets' names only.

Status is one `list_jobs()` per refresh, mapped through RAY_STATES (FAILED with exit code 124 is a
timeout). When the cluster no longer knows a job (a restarted head), the wrapper's
`.ray_exit.json` still gives the outcome.

Arrays: with `max_parallel` >= N the N jobs are submitted at once and Ray's resource accounting
queues what does not fit (GPUs are never oversubscribed); with a smaller cap one supervisor job
keeps the cap in the cluster (`launcher/backends/ray/array.py`). Addresses, the head and node
inventory: `launcher/backends/ray/cluster.py`. `status()` only reads; `logs()` saves Ray's log
of a job that ended without running into its run directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from launcher import paths
from launcher.backends.base import Backend, JobState, Request, passthrough_env
from launcher.backends.follow import follow_files
from launcher.backends.ray import agent as ray_agent
from launcher.backends.ray import array as ray_array
from launcher.backends.ray.cluster import (
    Endpoint,
    NodeResources,
    answers,
    cluster_nodes,
    job_client_class,
    last_line,
    resolve_address,
    start_local_head,
    use_head_token,
)
from launcher.backends.spec import LaunchSpec
from launcher.config.cluster import ClusterProfile, RaySpec
from launcher.errors import UserError
from launcher.jsonio import atomic_write_json
from launcher.tracking.wandb_mode import redact_env

RAY_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "SUCCEEDED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "STOPPED": JobState.CANCELLED,
}
"""Every Ray JobStatus and what it means here; FAILED with exit code 124 (the wrapper's time
limit) is TIMEOUT."""

EXCLUDES = [
    "/.git", "/runs", "/wandb", "/bench", "/.whl", "/.tiny", "/.benchmarks", "/.venv",
    "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info",
    "*.pt", "*.pth", "*.bin", "*.safetensors", "*.ckpt", "*.gguf",
]  # fmt: skip
"""Never uploaded with the project (on top of what .gitignore says): run outputs, caches, weights."""


def _ray_state(details: Any) -> JobState:
    state = RAY_STATES.get(str(getattr(details.status, "value", details.status)), JobState.UNKNOWN)
    if state is JobState.FAILED and exit_code(details) == ray_agent.TIMEOUT_EXIT:
        return JobState.TIMEOUT
    return state


def exit_code(details: Any) -> int | None:
    """The entrypoint's exit code: JobDetails.driver_exit_code, else parsed from its message."""
    code = getattr(details, "driver_exit_code", None)
    if code is not None:
        return int(code)
    found = re.search(r"exit code (-?\d+)", str(getattr(details, "message", "") or ""))
    return int(found.group(1)) if found else None


def _whole(value: float | int | None) -> float | int:
    """3.0 -> 3 (for messages), 0.5 stays 0.5."""
    number = float(value or 0)
    return int(number) if number.is_integer() else number


def _index_dir() -> Path:
    path = paths.launch_home() / "ray"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class RayPayload:
    """The keyword arguments of JobSubmissionClient.submit_job (passthrough variables added at submit)."""

    job: dict[str, Any]


class RayBackend(Backend[RayPayload]):
    name = "ray"

    def __init__(self, profile: ClusterProfile) -> None:
        super().__init__(profile)
        self._client_obj: Any = None
        self._down: str | None = None
        self._jobs: dict[str, Any] = {}
        self._queued: dict[str, Any] = {}
        self._nodes: list[NodeResources] | None = None
        self._asked: set[str] = set()

    @property
    def spec(self) -> RaySpec:
        assert self.profile.ray is not None
        return self.profile.ray

    @property
    def _source(self) -> str:
        """The profile's file, or its name when it was read back from a run's launch.json."""
        source = self.profile.source
        return source if source != "<cluster>" else f"cluster '{self.profile.name}'"

    @property
    def endpoint(self) -> Endpoint:
        return resolve_address(self.spec, self._source)

    # ------------------------------------------------------------------ the job spec

    def python(self) -> str:
        return self.spec.python or (sys.executable if self.endpoint.on_this_machine else "python")

    def _excludes(self) -> list[str]:
        excludes = list(EXCLUDES)
        with contextlib.suppress(ValueError):
            excludes.append("/" + paths.runs_root().relative_to(paths.PROJECT_ROOT).as_posix())
        return excludes

    def entrypoint(self, words: list[str]) -> str:
        line = shlex.join(words)
        if self.spec.working_dir == "shared":
            return f"cd {shlex.quote(str(paths.PROJECT_ROOT))} && exec {line}"
        return f"exec {line}"

    def runtime_env(self, env_vars: dict[str, str]) -> dict[str, Any]:
        if self.spec.working_dir == "shared":
            return {"env_vars": env_vars}
        return {"working_dir": str(paths.PROJECT_ROOT), "excludes": self._excludes(), "env_vars": env_vars}

    def job_spec(self, job: LaunchSpec) -> dict[str, Any]:
        """The keyword arguments of JobSubmissionClient.submit_job, without passthrough variables."""
        python = self.python()
        words = [
            python, "-m", "launcher.backends.ray.agent", "job", "--run-dir", str(job.run_dir),
            "--time-limit", str(job.time_s), "--", *job.local_command(python),
        ]  # fmt: skip
        spec: dict[str, Any] = {
            "submission_id": job.run_id,
            "entrypoint": self.entrypoint(words),
            "entrypoint_num_cpus": job.cpus_per_task,
            "entrypoint_num_gpus": job.gpus_per_node,
        }
        if job.mem_gb:
            spec["entrypoint_memory"] = int(job.mem_gb * 1024**3)
        env = {**job.env, ray_agent.SECRETS_ENV: str(ray_agent.secrets_file(job.run_dir))}
        spec["runtime_env"] = self.runtime_env(env)
        spec["metadata"] = {
            "launch_run_id": job.run_id, "launch_run_dir": str(job.run_dir),
            "launch_recipe": job.recipe_name, "launch_cluster": self.profile.name,
            "launch_gpus": str(spec["entrypoint_num_gpus"]), "launch_cpus": str(spec["entrypoint_num_cpus"]),
            "launch_memory": str(spec.get("entrypoint_memory", 0)),
        }  # fmt: skip
        return spec

    def spec_text(self, spec: dict[str, Any], title: str) -> str:
        """YAML of a spec, and the names of the passthrough variables its secrets file will hold."""
        where = self.endpoint.url + (
            " (address: local; started if no head answers)" if self.spec.address.strip() == "local" else ""
        )
        held = ", ".join(f"{k}={v}" for k, v in sorted(redact_env(passthrough_env()).items())) or "none"
        head = (
            f"# {title}\n"
            f"# Ray job spec (JobSubmissionClient.submit_job arguments) for {where}\n"
            f"# the submitting shell's tracking/credential variables go in ${ray_agent.SECRETS_ENV} (0600,\n"
            f"# read and deleted by the job wrapper), never in the spec: {held}\n"
        )
        return head + yaml.safe_dump(json.loads(json.dumps(spec)), sort_keys=False, width=1000)

    def translate(self, job: LaunchSpec) -> tuple[str, RayPayload]:
        if job.nodes > 1:
            raise UserError(
                f"{job.source}: resources.nodes: {job.nodes} but the Ray backend runs a job on "
                "one node; valid: 1 (multi-node training: the slurm backend)"
            )
        self.endpoint  # noqa: B018 - a bad address is an error at dry-run time too
        if self.spec.working_dir == "upload" and not (paths.PROJECT_ROOT / "pyproject.toml").is_file():
            raise UserError(
                f"{self._source}: ray.working_dir: upload needs the project checkout, but the "
                f"launcher runs from {paths.PROJECT_ROOT}; install it with pip install -e . from a checkout"
            )
        spec = self.job_spec(job)
        title = f"recipe-launcher run {job.run_id}: recipe {job.recipe_name} on cluster {job.cluster} (ray)"
        return self.spec_text(spec, title), RayPayload(spec)

    # ------------------------------------------------------------------ reaching the cluster

    def _client(self, start: bool = False) -> Any:
        """A connected JobSubmissionClient; with `start`, a head is started for address local."""
        if self._client_obj is not None:
            return self._client_obj
        endpoint = self.endpoint
        use_head_token(endpoint.url)
        why = answers(endpoint.url)
        if why is not None and start and endpoint.start_if_down:
            spec, node = self.spec, self.profile.node
            cpus = spec.num_cpus or (node.cpus if node else None) or os.cpu_count() or 1
            start_local_head(spec.dashboard_port, cpus, spec.num_gpus)
            gpus = "detected GPUs" if spec.num_gpus is None else f"{spec.num_gpus} GPU(s)"
            sys.stderr.write(
                f"started a local Ray head ({cpus} CPUs, {gpus}), Jobs API and dashboard at {endpoint.url}; "
                "it keeps running: `ray stop` ends it\n"
            )
            why = answers(endpoint.url)
        if why is not None:
            self._down = self._unreachable(why)
            raise UserError(self._down)
        client_class = job_client_class()
        try:
            self._client_obj = client_class(endpoint.url)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"{self._source}: ray.address: {endpoint.url}: {last_line(err)}") from None
        return self._client_obj

    def _unreachable(self, why: str) -> str:
        url, source = self.endpoint.url, self._source
        if self.spec.address.strip() == "local":
            return (
                f"{source}: ray.address: local: no Ray head answers at {url} ({why}); "
                "`launch recipe` starts one"
            )
        return (
            f"{source}: ray.address: the Ray cluster at {url} does not answer ({why}); "
            "is its head running with the dashboard (ray start --head --dashboard-host 0.0.0.0)?"
        )

    def check(self, requests: Sequence[Request[RayPayload]]) -> None:
        """Reach the cluster (starting a local head if the profile says local) and refuse a job
        that no node of it can hold. A cluster that does not report its nodes is not checked."""
        self._client(start=True)
        nodes = cluster_nodes(self.endpoint.url)
        if not nodes:
            return
        self._nodes = nodes
        for request in requests:
            problem = self._shortfall(request.payload.job, nodes, request.spec.source)
            if problem:
                raise UserError(problem)

    def _shortfall(self, spec: dict[str, Any], nodes: list[NodeResources], source: str) -> str | None:
        """Why no single node can run the job (GPUs first), or None."""
        gpus, cpus = _whole(spec.get("entrypoint_num_gpus", 0)), _whole(spec.get("entrypoint_num_cpus", 0))
        memory = spec.get("entrypoint_memory", 0)
        where = f"Ray cluster at {self.endpoint.url}"
        most_gpus = max(int(n.gpus) for n in nodes)
        if gpus and not any(n.gpus >= gpus for n in nodes):
            return (
                f"{source}: resources.gpus_per_node: {gpus} is more than the {most_gpus} GPUs of the "
                f"largest node of the {where}; valid: 0-{most_gpus}"
            )
        fits = [n for n in nodes if n.gpus >= gpus]
        if cpus and not any(n.cpus >= cpus for n in fits):
            most = max(int(n.cpus) for n in fits)
            return (
                f"{source}: resources.cpus_per_gpu: the job needs {cpus} CPUs but the largest node of the "
                f"{where} with {gpus} GPU(s) has {most}; lower resources.cpus_per_gpu"
            )
        fits = [n for n in fits if n.cpus >= cpus]
        if memory and not any(n.memory >= memory for n in fits):
            most = max(n.memory for n in fits) / 1024**3
            return (
                f"{source}: resources.mem_gb: {memory / 1024**3:g} is more than the {most:.1f} GB Ray "
                f"offers on any node of the {where} that has the CPUs and GPUs"
            )
        return None

    # ------------------------------------------------------------------ submitting

    def submit_spec(self, client: Any, spec: dict[str, Any]) -> str:
        """Submit a spec as it is; a job wrapper's secrets file is written first (write_secrets)."""
        try:
            job_id: str = client.submit_job(**spec)
        except (RuntimeError, ValueError, ConnectionError, OSError) as err:
            raise UserError(
                f"the Ray cluster at {self.endpoint.url} refused the job: {last_line(err)}"
            ) from None
        return job_id

    def remember(self, job_id: str, run_dir: Path) -> None:
        atomic_write_json(
            _index_dir() / f"{job_id}.json", {"run_dir": str(run_dir), "url": self.endpoint.url}
        )

    def submit(self, request: Request[RayPayload]) -> str:
        """Submit the run's job spec (submit.sh holds it, secrets redacted); the id is the run id."""
        client = self._client(start=True)
        self.write_secrets(request)
        try:
            job_id = self.submit_spec(client, request.payload.job)
        except BaseException:
            ray_agent.secrets_file(request.spec.run_dir).unlink(missing_ok=True)
            raise
        self.remember(job_id, request.spec.run_dir)
        return job_id

    @staticmethod
    def write_secrets(request: Request[RayPayload]) -> None:
        """The passthrough variables, for the job wrapper to read and delete (see ray_agent)."""
        ray_agent.write_secrets(ray_agent.secrets_file(request.spec.run_dir), passthrough_env())

    def array_script(self, requests: Sequence[Request[RayPayload]], max_parallel: int) -> str:
        return ray_array.array_script(self, requests, max_parallel)

    def submit_array(self, requests: Sequence[Request[RayPayload]], max_parallel: int) -> list[str]:
        """N jobs at once when the cap allows, else one supervisor job (see ray_array)."""
        if not requests:
            return []
        client = self._client(start=True)
        cap = max(1, max_parallel)
        if cap >= len(requests):
            done: list[str] = []
            try:
                for request in requests:
                    done.append(self.submit(request))
            except BaseException:
                for job_id in done:
                    with contextlib.suppress(Exception):
                        client.stop_job(job_id)
                raise
            return done
        return ray_array.submit_supervised(self, client, requests, cap)

    # ------------------------------------------------------------------ watching

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """One list_jobs() for all ids; a cluster that does not answer gives the recorded outcome
        (.ray_exit.json) or unknown."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        self._asked.update(ids)
        try:
            client = self._client()
            listed = client.list_jobs()
        except UserError as err:
            self._down = str(err)
            return {job_id: self._recorded(job_id) for job_id in ids}
        except (ConnectionError, RuntimeError, OSError) as err:
            self._down = self._unreachable(last_line(err))
            return {job_id: self._recorded(job_id) for job_id in ids}
        self._down = None
        jobs = {d.submission_id: d for d in listed if d.submission_id}
        supervisors = {}
        for details in jobs.values():
            for entry in ((details.metadata or {}).get("launch_array_entries") or "").split(","):
                if entry:
                    supervisors[entry] = details
        states = {}
        for job_id in ids:
            details = jobs.get(job_id)
            if details is not None:
                self._jobs[job_id] = details
                states[job_id] = _ray_state(details)
                if states[job_id] is JobState.FAILED and self._index(job_id).get("cancel_requested"):
                    states[job_id] = JobState.CANCELLED  # killed while it waited: see cancel()
            elif job_id in supervisors:
                supervisor = supervisors[job_id]
                self._queued[job_id] = supervisor
                states[job_id] = self._queued_state(job_id, supervisor)
            else:
                states[job_id] = self._recorded(job_id)
            if states[job_id].is_terminal:
                self._drop_secrets(job_id)  # a job that ended without running its wrapper
        return states

    def _queued_state(self, job_id: str, supervisor: Any) -> JobState:
        """An array entry the supervisor has not submitted: pending while the supervisor runs."""
        state = _ray_state(supervisor)
        if not state.is_terminal:
            return JobState.PENDING
        return JobState.CANCELLED if state is JobState.CANCELLED else JobState.FAILED

    def _run_dir(self, job_id: str, details: Any = None) -> Path | None:
        meta = (getattr(details, "metadata", None) or {}) if details is not None else {}
        if meta.get("launch_run_dir") and meta.get("launch_run_id") == job_id:
            return Path(meta["launch_run_dir"])
        run_dir = self._index(job_id).get("run_dir")
        return Path(run_dir) if run_dir else None

    def _recorded(self, job_id: str) -> JobState:
        """The outcome the job wrapper wrote, for a job the cluster does not (or no longer) know."""
        run_dir = self._run_dir(job_id)
        try:
            record = json.loads((run_dir / ray_agent.EXIT_FILE).read_text()) if run_dir else {}
        except (OSError, ValueError):
            record = {}
        state = JobState(record["state"]) if record.get("state") in JobState._value2member_map_ else None
        return state if state is not None and state.is_terminal else JobState.UNKNOWN

    def _save_logs(self, job_id: str, details: Any, supervisor_of: bool = False) -> None:
        """Once a job has ended: when its wrapper wrote no logs into the run directory (it never
        ran: runtime env failure, stopped while pending, never submitted), save what Ray has."""
        run_dir = self._run_dir(job_id, None if supervisor_of else details)
        if run_dir is None or not (run_dir / "logs").is_dir():
            return
        out, err = run_dir / "logs" / "task0.out", run_dir / "logs" / "task0.err"
        if out.exists() or err.exists():
            return
        try:
            text = self._client().get_job_logs(details.submission_id)
        except (UserError, RuntimeError, ConnectionError, OSError):
            text = ""
        if supervisor_of:
            lines = [line for line in text.splitlines() if job_id in line]
            why = (
                "\n".join(lines) or f"the array supervisor {details.submission_id} ended before submitting it"
            )
            err.write_text(f"[launch] never submitted: {why}\n")
            out.write_text("")
            return
        out.write_text(text)
        message = str(details.message or "").strip()
        if _ray_state(details) in (JobState.FAILED, JobState.TIMEOUT) and message:
            err.write_text(message.split("last available logs")[0].strip() + "\n")

    def _cached(self, job_id: str) -> None:
        """explain() answers from the last status() that asked about `job_id`: one list_jobs()."""
        if job_id not in self._asked:
            self.status([job_id])

    def explain(self, job_id: str) -> str | None:
        self._cached(job_id)
        if job_id in self._queued and job_id not in self._jobs:
            supervisor = self._queued[job_id]
            meta = supervisor.metadata or {}
            total = len((meta.get("launch_array_entries") or "").split(","))
            state = _ray_state(supervisor)
            if not state.is_terminal:
                return (
                    f"queued by array supervisor {supervisor.submission_id}: at most "
                    f"{meta.get('launch_max_parallel', '?')} of {total} at once"
                )
            return f"never submitted: array supervisor {supervisor.submission_id} ended ({supervisor.status})"
        details = self._jobs.get(job_id)
        if details is None:
            if self._down:
                return self._down
            recorded = self._recorded(job_id)
            if recorded is not JobState.UNKNOWN:
                return f"the Ray cluster no longer knows this job; its wrapper recorded {recorded.value}"
            return f"the Ray cluster at {self.endpoint.url} does not know job {job_id}"
        return self._describe(details)

    def _describe(self, details: Any) -> str:
        status = str(getattr(details.status, "value", details.status))
        state = _ray_state(details)
        message = str(details.message or "").strip().split("last available logs")[0].strip().rstrip(",")
        if state is JobState.PENDING:
            if message.startswith("Job has not started yet"):
                message = "waiting for resources (CPUs, GPUs, memory) or for its runtime environment"
            return f"Ray: PENDING: {self._pending_shortfall(details) or message or 'waiting to start'}"
        if state is JobState.RUNNING:
            host = urlsplit(details.driver_agent_http_address or "").hostname
            return "Ray: RUNNING" + (f" on {host}" if host else "")
        if state is JobState.TIMEOUT:
            return f"time limit reached: the job was stopped (exit code {ray_agent.TIMEOUT_EXIT})"
        if state is JobState.FAILED and self._index(details.submission_id).get("cancel_requested"):
            return f"cancelled while waiting (Ray: {status}: {message.splitlines()[0] if message else '?'})"
        if state is JobState.FAILED:
            code = exit_code(details)
            return f"Ray: FAILED, exit code {code}" if code is not None else f"Ray: FAILED: {message}"
        if (details.metadata or {}).get("launch_cancelled_before_start"):
            return "cancelled before the array supervisor submitted it"
        return f"Ray: {status}"

    def _pending_shortfall(self, details: Any) -> str | None:
        """For a pending job: which resource no node of the cluster has enough of, if any."""
        meta = details.metadata or {}
        if "launch_gpus" not in meta:
            return None
        nodes = self._nodes if self._nodes is not None else cluster_nodes(self.endpoint.url)
        if not nodes:
            return None
        self._nodes = nodes
        needs = {
            "entrypoint_num_gpus": float(meta.get("launch_gpus") or 0),
            "entrypoint_num_cpus": float(meta.get("launch_cpus") or 0),
            "entrypoint_memory": float(meta.get("launch_memory") or 0),
        }
        problem = self._shortfall(needs, nodes, "the job")
        return f"no node can hold it: {problem.split(': ', 1)[1]}" if problem else None

    def logs(self, run_dir: Path, job_id: str, follow: bool = False) -> Iterator[tuple[Path, str]]:
        """The wrapper's logs/task0.{out,err}; a job that ended without running gets Ray's log
        saved there first (status() only reads; saving is done here)."""
        files = [run_dir / "logs" / "task0.out", run_dir / "logs" / "task0.err"]
        if follow:
            yield from follow_files(lambda: files, self._ended(job_id))
            if any(f.exists() for f in files):
                return
        if not any(f.exists() for f in files):
            self._save_ended_logs(job_id)
        yield from follow_files(lambda: files, lambda: True)

    def _save_ended_logs(self, job_id: str) -> None:
        state = self.status([job_id])[job_id]
        if not state.is_terminal:
            return
        if job_id in self._jobs:
            self._save_logs(job_id, self._jobs[job_id])
        elif job_id in self._queued:
            self._save_logs(job_id, self._queued[job_id], supervisor_of=True)

    def _ended(self, job_id: str, every: float = 2.0) -> Callable[[], bool]:
        last = {"at": 0.0, "done": False}

        def done() -> bool:
            if time.monotonic() - last["at"] >= every:
                last["at"] = time.monotonic()
                state = self.status([job_id])[job_id]
                last["done"] = state.is_terminal or (state is JobState.UNKNOWN and self._down is not None)
            return bool(last["done"])

        return done

    def cancel(self, job_id: str) -> None:
        """stop_job, then wait (up to 45 s) until Ray reports the job ended. An array entry not
        submitted yet gets its id claimed by a stopped placeholder. A job still pending after a
        few seconds waits for resources: Ray queues the stop behind its supervisor actor, which
        never starts, so a small job kills that actor (Ray then reports FAILED: shown cancelled)."""
        client = self._client()
        try:
            client.stop_job(job_id)
        except RuntimeError as err:
            if "does not exist" not in str(err):
                raise UserError(f"Ray could not stop job {job_id}: {last_line(err)}") from None
            ray_array.claim_unsubmitted(client, job_id, self._run_dir(job_id))
        # stop first, then record: the record only tells a killed supervisor's FAILED from a failure
        self._drop_secrets(job_id)  # a job stopped before its wrapper ran leaves its secrets file
        self._index_update(job_id, cancel_requested=time.time())
        started, killed = time.monotonic(), False
        while time.monotonic() < started + 45:
            self._jobs.pop(job_id, None)
            state = self.status([job_id])[job_id]
            if state.is_terminal:
                return
            if (
                state is JobState.PENDING
                and job_id in self._jobs
                and not killed
                and time.monotonic() > started + 3
            ):
                killed = True
                self._kill_supervisor(client, job_id)
            time.sleep(0.5)

    def _drop_secrets(self, job_id: str) -> None:
        run_dir = self._run_dir(job_id)
        if run_dir is not None:
            with contextlib.suppress(OSError):
                ray_agent.secrets_file(run_dir).unlink(missing_ok=True)

    def _kill_supervisor(self, client: Any, job_id: str) -> None:
        ray_array.kill_job_supervisor(client, job_id, self.python())

    def _index(self, job_id: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((_index_dir() / f"{job_id}.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _index_update(self, job_id: str, **changes: Any) -> None:
        data = self._index(job_id)
        if data:
            atomic_write_json(_index_dir() / f"{job_id}.json", {**data, **changes})
