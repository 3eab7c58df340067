"""The Jobs API of one Ray cluster profile: its address, a connected client, job specs and their
YAML, submitting a spec, and the launcher's index of the jobs it submitted there.

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
`entrypoint_memory` (mem_gb); Ray sets CUDA_VISIBLE_DEVICES for the GPUs it hands out.

Code and data: with `ray.working_dir: upload` (the default) the run's code snapshot
(launcher.runs.code) is the job's runtime_env `working_dir`: Ray zips it, stores it in the cluster
once per content hash and puts it first on the job's PYTHONPATH, so the nodes need no checkout, only
a Python environment with the job's dependencies; the job runs in Ray's copy of it, so a recipe's
relative paths do not reach the nodes (give absolute ones on a shared filesystem). `--live-code`
is refused there. With `shared` nothing is uploaded: the entrypoint `cd`s into the submitting
working directory and the snapshot (beside the runs) is on PYTHONPATH; both must sit at the same
path on every node. Either way the job reads and writes its run directory by absolute path: with a
head on this machine that just works; on a remote cluster the runs root ($LAUNCH_RUNS) must be a
filesystem shared at the same path by this machine and the nodes (the wrapper fails with exit 2 and
says so otherwise).

Environment: the job gets the LaunchSpec environment through runtime_env `env_vars`, and the
submitting shell's `passthrough_env()` (W&B, AWS, HF, ... keys) through a 0600 file beside the run
directory that the wrapper reads and deletes (`ray_agent.take_secrets`): Ray writes runtime_env to
its session logs and serves it from the Jobs API, so secrets never go there. submit.sh holds the
job spec as YAML with the secrets' names only.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from launcher import paths
from launcher.backends.base import passthrough_env
from launcher.backends.ray import agent as ray_agent
from launcher.backends.ray.cluster import (
    Endpoint,
    answers,
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

EXCLUDES = ["__pycache__", "*.pyc"]
"""Never uploaded with a snapshot (which holds none: a guard for a snapshot made by hand)."""


def _index_dir() -> Path:
    path = paths.launch_home() / "ray"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class RayPayload:
    """The keyword arguments of JobSubmissionClient.submit_job (passthrough variables added at submit)."""

    job: dict[str, Any]


class RayJobs:
    """One profile's cluster as the Jobs API serves it; the client is made once, on first use."""

    def __init__(self, profile: ClusterProfile) -> None:
        self.profile = profile
        self._client: Any = None

    @property
    def spec(self) -> RaySpec:
        assert self.profile.ray is not None
        return self.profile.ray

    @property
    def source(self) -> str:
        """The profile's file, or its name when it was read back from a run's launch.json."""
        source = self.profile.source
        return source if source != "<cluster>" else f"cluster '{self.profile.name}'"

    @property
    def endpoint(self) -> Endpoint:
        return resolve_address(self.spec, self.source)

    # ------------------------------------------------------------------ job specs

    def python(self) -> str:
        return self.spec.python or (sys.executable if self.endpoint.on_this_machine else "python")

    def entrypoint(self, words: list[str], workdir: Path) -> str:
        """`words` as a shell line; with `shared`, run in `workdir` (with `upload`, in Ray's copy
        of the code)."""
        line = shlex.join(words)
        if self.spec.working_dir == "shared":
            return f"cd {shlex.quote(str(workdir))} && exec {line}"
        return f"exec {line}"

    def runtime_env(self, env_vars: dict[str, str], code_dir: Path | None) -> dict[str, Any]:
        """`env_vars`, and with `upload` the code snapshot as the working_dir (a UserError for live
        code, which is never uploaded: the nodes would run a copy, not the live packages)."""
        if self.spec.working_dir == "shared":
            return {"env_vars": env_vars}
        if code_dir is None:
            raise UserError(
                f"--live-code: {self.source} has ray.working_dir: upload, which sends the cluster a copy "
                "of the code; submit without --live-code (the snapshot is uploaded), or use working_dir: "
                "shared"
            )
        return {"working_dir": str(code_dir), "excludes": list(EXCLUDES), "env_vars": env_vars}

    def job_spec(self, job: LaunchSpec) -> dict[str, Any]:
        """The keyword arguments of JobSubmissionClient.submit_job, without passthrough variables."""
        python = self.python()
        words = [
            python, "-m", "launcher.backends.ray.agent", "job", "--run-dir", str(job.run_dir),
            "--time-limit", str(job.time_s), "--", *job.local_command(python),
        ]  # fmt: skip
        spec: dict[str, Any] = {
            "submission_id": job.run_id,
            "entrypoint": self.entrypoint(words, job.workdir),
            "entrypoint_num_cpus": job.cpus_per_task,
            "entrypoint_num_gpus": job.gpus_per_node,
        }
        if job.mem_gb:
            spec["entrypoint_memory"] = int(job.mem_gb * 1024**3)
        env = {**job.env, ray_agent.SECRETS_ENV: str(ray_agent.secrets_file(job.run_dir))}
        spec["runtime_env"] = self.runtime_env(env, job.code_dir)
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

    # ------------------------------------------------------------------ reaching the cluster

    def client(self, start: bool = False) -> Any:
        """A connected JobSubmissionClient; with `start`, a head is started for address local."""
        if self._client is not None:
            return self._client
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
            raise UserError(self.unreachable(why))
        client_class = job_client_class()
        try:
            self._client = client_class(endpoint.url)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"{self.source}: ray.address: {endpoint.url}: {last_line(err)}") from None
        return self._client

    def unreachable(self, why: str) -> str:
        """The one line for a cluster that does not answer."""
        url, source = self.endpoint.url, self.source
        if self.spec.address.strip() == "local":
            return (
                f"{source}: ray.address: local: no Ray head answers at {url} ({why}); "
                "`launch recipe` starts one"
            )
        return (
            f"{source}: ray.address: the Ray cluster at {url} does not answer ({why}); "
            "is its head running with the dashboard (ray start --head --dashboard-host 0.0.0.0)?"
        )

    # ------------------------------------------------------------------ submitting

    def submit_spec(self, spec: dict[str, Any]) -> str:
        """Submit a spec as it is (the cluster must answer already); a job wrapper's secrets file is
        written first (`write_secrets`)."""
        try:
            job_id: str = self.client().submit_job(**spec)
        except (RuntimeError, ValueError, ConnectionError, OSError) as err:
            raise UserError(
                f"the Ray cluster at {self.endpoint.url} refused the job: {last_line(err)}"
            ) from None
        return job_id

    @staticmethod
    def write_secrets(run_dir: Path) -> None:
        """The passthrough variables, for the job wrapper of `run_dir` to read and delete (see ray_agent)."""
        ray_agent.write_secrets(ray_agent.secrets_file(run_dir), passthrough_env())

    # ------------------------------------------------------------------ the index of submitted jobs

    def remember(self, job_id: str, run_dir: Path) -> None:
        atomic_write_json(
            _index_dir() / f"{job_id}.json", {"run_dir": str(run_dir), "url": self.endpoint.url}
        )

    @staticmethod
    def index(job_id: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((_index_dir() / f"{job_id}.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def index_update(self, job_id: str, **changes: Any) -> None:
        data = self.index(job_id)
        if data:
            atomic_write_json(_index_dir() / f"{job_id}.json", {**data, **changes})
