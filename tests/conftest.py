"""The fixtures every test folder shares: an isolated $LAUNCH_HOME and runs root, `launch` run as a
subprocess in it, and the session's real services (each started only by a test that asks for it).

Helpers that are not fixtures live in `tests.support` (import them from there, not from here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.chain import EVAL_RECIPE
from tests.support.cli import Launch, cli_runner, isolated_env
from tests.support.llm_server import llm_server  # noqa: F401  (session fixture: a real llama.cpp server on loopback)
from tests.support.ray_head import head  # noqa: F401  (session fixture: the one Ray head on loopback)
from tests.support.s3_server import s3, stored_run  # noqa: F401  (session fixtures: the S3 endpoint, a stored run)


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


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, str]:
    """A test module's own `launch` world (W&B disabled), shared by its tests: for modules that
    train once and check the run many times."""
    return isolated_env(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))


@pytest.fixture(scope="module")
def run(env: dict[str, str]) -> Launch:
    """`launch ARGS...` in the module's world (`env`), from the folder above its runs root."""
    return cli_runner(env)


@pytest.fixture
def chain_world(launch_env: dict[str, str], tmp_path: Path) -> Path:
    """The runs root of a `--then` chain test, with its eval recipe (chain_eval) in $LAUNCH_HOME."""
    recipes = Path(launch_env["LAUNCH_HOME"]) / "recipes"
    recipes.mkdir(parents=True)
    (recipes / "chain_eval.yaml").write_text(EVAL_RECIPE)
    return tmp_path / "runs"
