"""Ray backend: every run is one Ray job, submitted through the Ray Jobs API (`jobs`).

A job runs on one node: `resources.nodes` > 1 is refused. How a job is specified, where the
cluster is and how its code and secrets reach it: `launcher/backends/ray/jobs.py`; the head and
node inventory: `launcher/backends/ray/cluster.py`; what runs inside the cluster:
`launcher/backends/ray/agent.py`.

Status is one `list_jobs()` per refresh, mapped through RAY_STATES (FAILED with exit code 124 is a
timeout). When the cluster no longer knows a job (a restarted head), the wrapper's
`.ray_exit.json` still gives the outcome. `status()` only reads; `logs()` saves Ray's log of a job
that ended without running into its run directory. `launch status RUN` names the node Ray ran the
job on (its `driver_node_id`: nodes of one machine share an address).

Arrays: with `max_parallel` >= N the N jobs are submitted at once and Ray's resource accounting
queues what does not fit (GPUs are never oversubscribed) and places each on a node with room
(Ray's default policy: the head until half of it is used, then the least used node;
tests/integration/ray/test_two_node.py sees an array spread over two nodes); with a smaller cap
one supervisor job keeps the cap in the cluster (`launcher/backends/ray/array.py`).

A follow-on job (`submit_after`, a run's `--then` chain) is a Ray job with no resources that
starts at once and waits for the job it follows itself; `agent exec` hands it the submitting
shell's passthrough variables, as the job wrapper does for a run.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from launcher.backends.base import Backend, Request
from launcher.backends.follow import follow_files
from launcher.backends.ray import agent as ray_agent
from launcher.backends.ray import array as ray_array
from launcher.backends.ray.cluster import NodeResources, cluster_nodes, last_line
from launcher.backends.ray.jobs import RayJobs, RayPayload
from launcher.backends.spec import FollowOn, LaunchSpec
from launcher.config.cluster import ClusterProfile, RaySpec
from launcher.errors import UserError
from launcher.jsonio import read_object
from launcher.runs.cost import Used, held_in, requested_gpus
from launcher.runs.state import RunState

RAY_STATES: dict[str, RunState] = {
    "PENDING": RunState.PENDING,
    "RUNNING": RunState.RUNNING,
    "SUCCEEDED": RunState.COMPLETED,
    "FAILED": RunState.FAILED,
    "STOPPED": RunState.CANCELLED,
}
"""Every Ray JobStatus and what it means here; FAILED with exit code 124 (the wrapper's time
limit) is TIMEOUT."""
NODE_ID_SHOWN = 12
"""Hex digits of a Ray node id that `launch status` shows (Ray's own CLI shows them in full)."""


def _ray_state(details: Any) -> RunState:
    state = RAY_STATES.get(str(getattr(details.status, "value", details.status)), RunState.UNKNOWN)
    if state is RunState.FAILED and exit_code(details) == ray_agent.TIMEOUT_EXIT:
        return RunState.TIMEOUT
    return state


def exit_code(details: Any) -> int | None:
    """The entrypoint's exit code: JobDetails.driver_exit_code, else parsed from its message."""
    code = getattr(details, "driver_exit_code", None)
    if code is not None:
        return int(code)
    found = re.search(r"exit code (-?\d+)", str(getattr(details, "message", "") or ""))
    return int(found.group(1)) if found else None


def _where(details: Any) -> str:
    """' on node <id> (<address>)': the Ray node the job's driver ran on (several nodes may share
    an address), or ''."""
    node = str(getattr(details, "driver_node_id", None) or "")
    host = urlsplit(getattr(details, "driver_agent_http_address", None) or "").hostname
    if not node:
        return f" on {host}" if host else ""
    return f" on node {node[:NODE_ID_SHOWN]}" + (f" ({host})" if host else "")


def _whole(value: float | int | None) -> float | int:
    """3.0 -> 3 (for messages), 0.5 stays 0.5."""
    number = float(value or 0)
    return int(number) if number.is_integer() else number


class RayBackend(Backend[RayPayload]):
    name = "ray"

    def __init__(self, profile: ClusterProfile) -> None:
        super().__init__(profile)
        self.jobs = RayJobs(profile)
        self._down: str | None = None
        self._jobs: dict[str, Any] = {}
        self._queued: dict[str, Any] = {}
        self._nodes: list[NodeResources] | None = None
        self._asked: set[str] = set()

    @property
    def spec(self) -> RaySpec:
        assert self.profile.ray is not None
        return self.profile.ray

    def translate(self, job: LaunchSpec) -> tuple[str, RayPayload]:
        if job.nodes > 1:
            raise UserError(
                f"{job.source}: resources.nodes: {job.nodes} but the Ray backend runs a job on "
                "one node; valid: 1 (multi-node training: the slurm backend)"
            )
        self.jobs.endpoint  # noqa: B018 - a bad address is an error at dry-run time too
        spec = self.jobs.job_spec(job)
        title = f"recipe-launcher run {job.run_id}: recipe {job.recipe_name} on cluster {job.cluster} (ray)"
        return self.jobs.spec_text(spec, title), RayPayload(spec)

    def check(self, requests: Sequence[Request[RayPayload]]) -> None:
        """Reach the cluster (starting a local head if the profile says local) and refuse a job
        that no node of it can hold. A cluster that does not report its nodes is not checked."""
        self.jobs.client(start=True)
        nodes = cluster_nodes(self.jobs.endpoint.url)
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
        where = f"Ray cluster at {self.jobs.endpoint.url}"
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
            most_gb = max(n.memory for n in fits) / 1024**3
            return (
                f"{source}: resources.mem_gb: {memory / 1024**3:g} is more than the {most_gb:.1f} GB Ray "
                f"offers on any node of the {where} that has the CPUs and GPUs"
            )
        return None

    # ------------------------------------------------------------------ submitting

    def submit(self, request: Request[RayPayload]) -> str:
        """Submit the run's job spec (submit.sh holds it, secrets redacted); the id is the run id."""
        self.jobs.client(start=True)
        self.jobs.write_secrets(request.spec.run_dir)
        try:
            job_id = self.jobs.submit_spec(request.payload.job)
        except BaseException:
            ray_agent.secrets_file(request.spec.run_dir).unlink(missing_ok=True)
            raise
        self.jobs.remember(job_id, request.spec.run_dir)
        return job_id

    def array_script(self, requests: Sequence[Request[RayPayload]], max_parallel: int) -> str:
        return ray_array.array_script(self.jobs, requests, max_parallel)

    def submit_array(self, requests: Sequence[Request[RayPayload]], max_parallel: int) -> list[str]:
        """N jobs at once when the cap allows, else one supervisor job (see ray_array)."""
        if not requests:
            return []
        client = self.jobs.client(start=True)
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
        return ray_array.submit_supervised(self.jobs, requests, cap)

    def submit_after(self, request: FollowOn, *, after: str) -> str:
        """A job with no resources (it only waits and submits) on this cluster, started at once:
        `request` waits for `after` itself. Its spec goes to `<folder>/<stem>.yaml`; its secrets
        file sits beside the run directories, named after the job."""
        python = self.jobs.python()
        words = [python, "-m", "launcher.backends.ray.agent", "exec", "--", *request.command(python)]
        holder = request.run_dir.with_name(request.name)
        secrets = ray_agent.secrets_file(holder)
        out, err = shlex.quote(str(request.out)), shlex.quote(str(request.err))
        spec = {
            "submission_id": request.name,
            "entrypoint": f"{self.jobs.entrypoint(words, request.workdir)} >>{out} 2>>{err}",
            "entrypoint_num_cpus": 0,
            "runtime_env": self.jobs.runtime_env(
                {**request.env, ray_agent.SECRETS_ENV: str(secrets)}, request.code_dir
            ),
            "metadata": {"launch_chain_of": request.run_id, "launch_run_dir": str(request.folder)},
        }
        (request.folder / f"{request.stem}.yaml").write_text(self.jobs.spec_text(spec, request.title))
        self.jobs.client()
        self.jobs.write_secrets(holder)
        try:
            return self.jobs.submit_spec(spec)
        except BaseException:
            secrets.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ watching

    def status(self, job_ids: Sequence[str]) -> dict[str, RunState]:
        """One list_jobs() for all ids; a cluster that does not answer gives the recorded outcome
        (.ray_exit.json) or unknown."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return {}
        self._asked.update(ids)
        try:
            client = self.jobs.client()
            listed = client.list_jobs()
        except UserError as err:
            self._down = str(err)
            return {job_id: self._recorded(job_id) for job_id in ids}
        except (ConnectionError, RuntimeError, OSError) as err:
            self._down = self.jobs.unreachable(last_line(err))
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
                if states[job_id] is RunState.FAILED and self.jobs.index(job_id).get("cancel_requested"):
                    states[job_id] = RunState.CANCELLED  # killed while it waited: see cancel()
            elif job_id in supervisors:
                supervisor = supervisors[job_id]
                self._queued[job_id] = supervisor
                states[job_id] = self._queued_state(job_id, supervisor)
            else:
                states[job_id] = self._recorded(job_id)
            if states[job_id].is_terminal:
                self._drop_secrets(job_id)  # a job that ended without running its wrapper
        return states

    def _queued_state(self, job_id: str, supervisor: Any) -> RunState:
        """An array entry the supervisor has not submitted: pending while the supervisor runs."""
        state = _ray_state(supervisor)
        if not state.is_terminal:
            return RunState.PENDING
        return RunState.CANCELLED if state is RunState.CANCELLED else RunState.FAILED

    def _run_dir(self, job_id: str, details: Any = None) -> Path | None:
        meta = (getattr(details, "metadata", None) or {}) if details is not None else {}
        if meta.get("launch_run_dir") and meta.get("launch_run_id") == job_id:
            return Path(meta["launch_run_dir"])
        run_dir = self.jobs.index(job_id).get("run_dir")
        return Path(run_dir) if run_dir else None

    def _recorded(self, job_id: str) -> RunState:
        """The outcome the job wrapper wrote, for a job the cluster does not (or no longer) know."""
        run_dir = self._run_dir(job_id)
        try:
            record = json.loads((run_dir / ray_agent.EXIT_FILE).read_text()) if run_dir else {}
        except (OSError, ValueError):
            record = {}
        state = RunState(record["state"]) if record.get("state") in RunState._value2member_map_ else None
        return state if state is not None and state.is_terminal else RunState.UNKNOWN

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
            text = self.jobs.client().get_job_logs(details.submission_id)
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
        if _ray_state(details) in (RunState.FAILED, RunState.TIMEOUT) and message:
            err.write_text(message.split("last available logs")[0].strip() + "\n")

    def _cached(self, job_id: str) -> None:
        """explain() answers from the last status() that asked about `job_id`: one list_jobs()."""
        if job_id not in self._asked:
            self.status([job_id])

    def gpu_hours(self, runs: Sequence[tuple[Path, Sequence[str]]]) -> list[Used | None]:
        """From the job wrapper's .ray_exit.json: `started` to `ended` (now while running) x the GPUs
        the run asked for (Ray hands a job exactly those)."""
        return [held_in(read_object(d / ray_agent.EXIT_FILE) or {}, requested_gpus(d)) for d, _ in runs]

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
            if recorded is not RunState.UNKNOWN:
                return f"the Ray cluster no longer knows this job; its wrapper recorded {recorded.value}"
            return f"the Ray cluster at {self.jobs.endpoint.url} does not know job {job_id}"
        return self._describe(details)

    def _describe(self, details: Any) -> str:
        status = str(getattr(details.status, "value", details.status))
        state = _ray_state(details)
        message = str(details.message or "").strip().split("last available logs")[0].strip().rstrip(",")
        if state is RunState.PENDING:
            if message.startswith("Job has not started yet"):
                message = "waiting for resources (CPUs, GPUs, memory) or for its runtime environment"
            return f"Ray: PENDING: {self._pending_shortfall(details) or message or 'waiting to start'}"
        if state is RunState.RUNNING:
            return "Ray: RUNNING" + _where(details)
        if state is RunState.TIMEOUT:
            return f"time limit reached: the job was stopped (exit code {ray_agent.TIMEOUT_EXIT})"
        if state is RunState.FAILED and self.jobs.index(details.submission_id).get("cancel_requested"):
            return f"cancelled while waiting (Ray: {status}: {message.splitlines()[0] if message else '?'})"
        if state is RunState.FAILED:
            code = exit_code(details)
            return (
                f"Ray: FAILED, exit code {code}{_where(details)}"
                if code is not None
                else f"Ray: FAILED: {message}"
            )
        if (details.metadata or {}).get("launch_cancelled_before_start"):
            return "cancelled before the array supervisor submitted it"
        return f"Ray: {status}{_where(details)}"

    def _pending_shortfall(self, details: Any) -> str | None:
        """For a pending job: which resource no node of the cluster has enough of, if any."""
        meta = details.metadata or {}
        if "launch_gpus" not in meta:
            return None
        nodes = self._nodes if self._nodes is not None else cluster_nodes(self.jobs.endpoint.url)
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
                last["done"] = state.is_terminal or (state is RunState.UNKNOWN and self._down is not None)
            return bool(last["done"])

        return done

    def cancel(self, job_id: str) -> None:
        """stop_job, then wait (up to 45 s) until Ray reports the job ended. An array entry not
        submitted yet gets its id claimed by a stopped placeholder. A job still pending after a
        few seconds waits for resources: Ray queues the stop behind its supervisor actor, which
        never starts, so a small job kills that actor (Ray then reports FAILED: shown cancelled)."""
        client = self.jobs.client()
        try:
            client.stop_job(job_id)
        except RuntimeError as err:
            if "does not exist" not in str(err):
                raise UserError(f"Ray could not stop job {job_id}: {last_line(err)}") from None
            ray_array.claim_unsubmitted(client, job_id, self._run_dir(job_id))
        # stop first, then record: the record only tells a killed supervisor's FAILED from a failure
        self._drop_secrets(job_id)  # a job stopped before its wrapper ran leaves its secrets file
        self.jobs.index_update(job_id, cancel_requested=time.time())
        started, killed = time.monotonic(), False
        while time.monotonic() < started + 45:
            self._jobs.pop(job_id, None)
            state = self.status([job_id])[job_id]
            if state.is_terminal:
                return
            if (
                state is RunState.PENDING
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
        ray_array.kill_job_supervisor(client, job_id, self.jobs.python())
