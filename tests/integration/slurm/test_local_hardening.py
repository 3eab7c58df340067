"""A failed Slurm run shows its error line, like a failed local one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Launch, run_state, wait_for


def _job_id(runs: Path, run_id: str) -> str:
    return str(json.loads((runs / run_id / "launch.json").read_text())["job_ids"][0])


def _detail(launch: Launch, run_id: str) -> str:
    return str(launch("status", run_id, check=True).stdout)


@pytest.mark.slurm
def test_failed_slurm_run_shows_its_error_line(launch: Launch, tmp_path: Path) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    args = ["--set", "env={SMOKE_FAIL_AT: '2', SMOKE_STEP_SECONDS: '0.1'}", "--set", "train.max_steps=5"]
    run_id = launch("recipe", "tiny_smoke", "--cluster", "dev-slurm", *args, check=True).stdout.split()[0]
    wait_for(lambda: run_state(launch, run_id) == "failed", timeout=180, every=2)
    job_id = _job_id(tmp_path / "runs", run_id)
    assert (tmp_path / "runs" / run_id / "logs" / f"{job_id}.err").exists()
    lines = _detail(launch, run_id).splitlines()
    assert any(line.startswith("error ") and "failing at step 2" in line for line in lines), lines
