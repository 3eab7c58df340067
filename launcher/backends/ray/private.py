"""Every name of Ray's that Ray does not document as public, in one place, checked against RAY_CHECKED.

- `CLI_MODULE`: the module behind the `ray` command, run as `python -m` so that the head starts
  with this interpreter's Ray (the `ray` script on PATH may be another environment's);
- `reload_auth_config`: `ray._raylet.Config.initialize("")`, what `ray.init` does to read
  RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH again once they changed in this process;
- `kill_supervisor_code`: the code of a Ray job that kills another job's JobSupervisor actor by its
  name (`JOB_ACTOR_NAME_TEMPLATE`, `SUPERVISOR_ACTOR_RAY_NAMESPACE` of
  `ray.dashboard.modules.job.common`): a job waiting for resources cannot be stopped through the
  Jobs API, which queues the stop behind that actor.

A Ray version other than RAY_CHECKED may have moved them: the Ray tests (tests marked `ray`) use
each one.
"""

from __future__ import annotations

import sys

RAY_CHECKED = "2.60.0"
"""The Ray version these names were read from."""

CLI_MODULE = "ray.scripts.scripts"


def reload_auth_config() -> None:
    """Make an already imported Ray read its token settings from the environment again."""
    if "ray._raylet" in sys.modules:  # not imported yet: Ray reads them when it is
        from ray._raylet import Config  # type: ignore[attr-defined]  # compiled: no stubs

        Config.initialize("")


def kill_supervisor_code(job_id: str) -> str:
    """Python code (for `python -c` inside the cluster) that kills `job_id`'s JobSupervisor actor."""
    return (
        "import ray; ray.init(log_to_driver=False); "
        "from ray.dashboard.modules.job.common import JOB_ACTOR_NAME_TEMPLATE as T, "
        "SUPERVISOR_ACTOR_RAY_NAMESPACE as N; "
        f"ray.kill(ray.get_actor(T.format(job_id={job_id!r}), namespace=N)); print('stopped {job_id}')"
    )
