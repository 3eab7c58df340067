"""`launch` as a subprocess in an isolated world ($LAUNCH_HOME, runs root, GPU table of its own),
and waiting on what it started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

Launch = Callable[..., subprocess.CompletedProcess]


def isolated_env(root: Path) -> dict[str, str]:
    """The environment of a module's own `launch` world under `root` (W&B disabled)."""
    env = {**os.environ, "LAUNCH_HOME": str(root / "home"), "LAUNCH_RUNS": str(root / "runs"),
           "WANDB_MODE": "disabled", "LAUNCH_GPU_TABLE": str(root / "gpus")}  # fmt: skip
    env.pop("WANDB_API_KEY", None)
    return env


def cli_runner(env: dict[str, str]) -> Launch:
    """`launch ARGS...` as a subprocess in that world, from the folder above its runs root."""

    def launch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args], env=env, cwd=Path(env["LAUNCH_RUNS"]).parent,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    return launch


def wait_for(predicate: Callable[[], bool], timeout: float = 60, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def run_state(launch: Launch, run_id: str) -> str:
    """The state `launch status RUN` reports."""
    out = launch("status", run_id, check=True).stdout
    for line in out.splitlines():
        if line.startswith("state"):
            return line.split()[1]
    raise AssertionError(out)


@cache
def _sinfo_problem() -> str | None:
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%R %a"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    if proc.returncode != 0 or "gpu up" not in proc.stdout:
        return (proc.stderr or proc.stdout).strip() or "no partition gpu"
    return None


def require_slurm() -> None:
    """Fail (not skip) when the dev Slurm cluster does not answer: a slurm test must not pass silently."""
    problem = _sinfo_problem()
    if problem:
        pytest.fail(f"the dev Slurm cluster does not answer ({problem}): run bash cluster/dev/slurm-up.sh")
