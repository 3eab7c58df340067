"""The S3 check at submit against a dead endpoint (issue 26, item 25): an endpoint that accepts
connections and never answers kept `launch recipe` silent for more than 200 s (60 s read timeout x
5 botocore attempts). The check now has its own short bound; a dead endpoint is a broken
environment: one line naming the endpoint, exit 1, nothing submitted or written."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import Launch
from tests.support.dead_endpoints import closed_port, hanging_server

BOUND_S = 30
"""The check's bound (about 10 s for an endpoint that never answers) and the CLI's start-up."""


def _dead_store_env(launch_env: dict[str, str], endpoint: str) -> None:
    """Point `launch` at `endpoint` with the defaults a user has (no LAUNCH_S3_* or retry settings)."""
    for key in [k for k in launch_env if k.startswith(("AWS_", "LAUNCH_S3_"))]:
        launch_env.pop(key)
    launch_env.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test-key-id", AWS_SECRET_ACCESS_KEY="test-secret-key",
        AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )  # fmt: skip


def _assert_refused(proc: subprocess.CompletedProcess, endpoint: str, tmp_path: Path, took: float) -> None:
    assert took < BOUND_S, f"the check took {took:.0f} s"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert endpoint in lines[0], lines[0]
    assert proc.stdout == "" and not (tmp_path / "runs").exists(), "nothing may be submitted"
    assert "test-secret-key" not in proc.stderr


@pytest.mark.parametrize(
    "verb", [["recipe", "tiny_smoke"], ["sweep", "tiny_smoke", "--grid", "train.seed=1,2"]]
)
def test_an_endpoint_that_never_answers_fails_the_check_within_the_bound(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path, verb: list[str]
) -> None:
    with hanging_server() as port:
        endpoint = f"http://127.0.0.1:{port}"
        _dead_store_env(launch_env, endpoint)
        started = time.monotonic()
        proc = launch(
            *verb, "--cluster", "local", "--set", "artifacts.uri=s3://bucket/x", timeout=BOUND_S + 60
        )
        took = time.monotonic() - started
    _assert_refused(proc, endpoint, tmp_path, took)
    assert "artifacts.uri: cannot use s3://bucket/x: " in proc.stderr and "did not answer" in proc.stderr


def test_reeval_of_a_stored_run_on_an_endpoint_that_never_answers_fails_within_the_bound(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """The sibling: `launch reeval s3://...` listed the store with the transfer timeouts (minutes)."""
    with hanging_server() as port:
        endpoint = f"http://127.0.0.1:{port}"
        _dead_store_env(launch_env, endpoint)
        started = time.monotonic()
        proc = launch("reeval", "s3://bucket/x/tiny_smoke-20261201-1200-ab12", "--cluster", "local",
                      timeout=BOUND_S + 60)  # fmt: skip
        took = time.monotonic() - started
    _assert_refused(proc, endpoint, tmp_path, took)
    assert "did not answer" in proc.stderr


def test_a_closed_port_fails_the_check_at_once(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    _dead_store_env(launch_env, endpoint)
    started = time.monotonic()
    proc = launch("recipe", "tiny_smoke", "--cluster", "local", "--set", "artifacts.uri=s3://bucket/x")
    _assert_refused(proc, endpoint, tmp_path, time.monotonic() - started)
    assert "artifacts.uri: cannot use s3://bucket/x: cannot reach" in proc.stderr
