"""Ray arrays: N jobs with at most `max_parallel` unfinished, kept by a supervisor job in the cluster.

With a cap below N the launcher submits one small supervisor job (`ray_agent array`, no resources
reserved) that holds the N job specs with their pre-assigned submission ids and submits the next
one whenever fewer than `max_parallel` are unfinished. Until then an entry is pending ("queued by
array supervisor"); cancelling it claims its submission id with a stopped placeholder, so the
supervisor skips it. A job stuck waiting for resources cannot be stopped through the Jobs API
(Ray queues the stop behind its supervisor actor, which never starts): `kill_job_supervisor`
kills that actor (with private Ray names: `private.kill_supervisor_code`).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.backends.base import Request
from launcher.backends.ray import agent as ray_agent
from launcher.backends.ray.cluster import last_line
from launcher.backends.ray.jobs import RayJobs, RayPayload
from launcher.backends.ray.private import kill_supervisor_code
from launcher.errors import UserError

ARRAY_PREFIX = "launch-array-"


def _code_vars(env: dict[str, str]) -> dict[str, str]:
    """The code variables of a job (its snapshot on PYTHONPATH): the supervisor runs that launcher."""
    return {k: v for k, v in env.items() if k in ("PYTHONPATH", "PYTHONSAFEPATH", "LAUNCH_CODE")}


def array_spec(jobs: RayJobs, requests: Sequence[Request[RayPayload]], max_parallel: int) -> dict[str, Any]:
    """The supervisor job that submits `requests` at most `max_parallel` at a time."""
    entries = []
    for request in requests:
        entry = dict(request.payload.job)
        entry["runtime_env"] = {k: v for k, v in entry["runtime_env"].items() if k != "working_dir"}
        entries.append(entry)
    payload = {
        "address": jobs.endpoint.url, "max_parallel": max_parallel, "entries": entries,
        "upload": jobs.spec.working_dir == "upload",
    }  # fmt: skip
    python = jobs.python()
    first_spec = requests[0].spec
    first = first_spec.run_id
    return {
        "submission_id": ARRAY_PREFIX + first,
        "entrypoint": jobs.entrypoint(
            [python, "-m", "launcher.backends.ray.agent", "array"], first_spec.workdir
        ),
        "runtime_env": jobs.runtime_env(
            {**_code_vars(first_spec.env), ray_agent.ARRAY_ENV: ray_agent.encode_spec(payload)},
            first_spec.code_dir,
        ),
        "metadata": {
            "launch_array_entries": ",".join(r.spec.run_id for r in requests),
            "launch_max_parallel": str(max_parallel),
        },
    }


def array_script(jobs: RayJobs, requests: Sequence[Request[RayPayload]], max_parallel: int) -> str:
    """What submit_array sends: the supervisor (when the cap is below N), then each entry."""
    parts = []
    if len(requests) > 1 and max_parallel < len(requests):
        spec = array_spec(jobs, requests, max_parallel)
        title = (
            f"array supervisor for {len(requests)} runs, at most {max_parallel} at once: it submits the "
            f"entries below ({ray_agent.ARRAY_ENV} holds them) as slots free up"
        )
        spec["runtime_env"]["env_vars"][ray_agent.ARRAY_ENV] = "<the entries below, as zlib+base64 JSON>"
        parts.append(jobs.spec_text(spec, title))
    parts += [r.materialize() for r in requests]
    return "---\n".join(parts)


def submit_supervised(jobs: RayJobs, requests: Sequence[Request[RayPayload]], cap: int) -> list[str]:
    """Submit one supervisor job for `requests`; every run's submit.sh says who submits it."""
    spec = array_spec(jobs, requests, cap)
    note = (
        f"# submitted by array supervisor {spec['submission_id']} (Ray job), at most {cap} of "
        f"{len(requests)} at once: it submits this spec when a slot frees up\n"
    )
    for request in requests:
        (request.spec.run_dir / "submit.sh").write_text(note + request.materialize())
        # each entry's wrapper reads its own secrets file; the supervisor holds none
        jobs.write_secrets(request.spec.run_dir)
    try:
        jobs.submit_spec(spec)
    except BaseException:
        for request in requests:
            ray_agent.secrets_file(request.spec.run_dir).unlink(missing_ok=True)
        raise
    for request in requests:
        jobs.remember(request.spec.run_id, request.spec.run_dir)
    return [r.spec.run_id for r in requests]


def kill_job_supervisor(client: Any, job_id: str, python: str) -> None:
    """Submit a job (no resources) that kills `job_id`'s JobSupervisor actor by its Ray name."""
    code = kill_supervisor_code(job_id)
    with contextlib.suppress(RuntimeError):  # a second cancel: the killer exists already
        client.submit_job(
            entrypoint=f"{shlex.quote(python)} -c {shlex.quote(code)}",
            submission_id=f"launch-cancel-{job_id}", metadata={"launch_cancels": job_id},
        )  # fmt: skip


def claim_unsubmitted(client: Any, job_id: str, run_dir: Path | None) -> None:
    """Take an unsubmitted array entry's submission id with a placeholder and stop it."""
    meta = {"launch_run_id": job_id, "launch_cancelled_before_start": "1"}
    if run_dir is not None:
        meta["launch_run_dir"] = str(run_dir)
    try:
        client.submit_job(entrypoint="sleep 600", submission_id=job_id, metadata=meta)
    except RuntimeError as err:
        if "already exists" not in str(err):
            raise UserError(f"Ray could not stop job {job_id}: {last_line(err)}") from None
    client.stop_job(job_id)
