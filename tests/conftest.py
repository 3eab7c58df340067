"""Shared fixtures: an isolated $LAUNCH_HOME and runs root, and `launch` run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.llm_server import llm_server  # noqa: F401  (session fixture: a real llama.cpp server on loopback)
from tests.ray_head import head  # noqa: F401  (session fixture: the one Ray head on loopback)
from tests.s3_server import s3, stored_run  # noqa: F401  (session fixtures: the S3 endpoint, a stored run)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def launch_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for `launch` with its own registry, runs root and W&B directory."""
    home, runs = tmp_path / "home", tmp_path / "runs"
    env = {**os.environ, "LAUNCH_HOME": str(home), "LAUNCH_RUNS": str(runs), "WANDB_MODE": "offline"}
    env["LAUNCH_GPU_TABLE"] = str(tmp_path / "gpus")  # the machine-wide table, one per test here
    env.pop("WANDB_API_KEY", None)
    monkeypatch.setenv("LAUNCH_HOME", str(home))
    monkeypatch.setenv("LAUNCH_RUNS", str(runs))
    monkeypatch.setenv("LAUNCH_GPU_TABLE", env["LAUNCH_GPU_TABLE"])
    return env


Launch = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def launch(launch_env: dict[str, str], tmp_path: Path) -> Launch:
    """Run `launch ARGS...` in a subprocess, from a scratch working directory."""

    def run(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.cli", *args], env=launch_env, cwd=tmp_path,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and proc.returncode != 0:
            cmd = " ".join(args)
            raise AssertionError(f"launch {cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


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
