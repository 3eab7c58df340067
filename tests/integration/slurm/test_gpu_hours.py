"""GPU-hours used on the dev Slurm cluster: a tiny job holding 2 pretend GPUs, submitted over a
profile's budget with --force, reports sacct's elapsed x 2 GPUs in `launch status RUN --json`,
recorded once in usage.json after it ended."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.cli.test_gpu_budget import budget_profile
from tests.support.cli import Launch, require_slurm, run_state, wait_for


def test_status_reports_sacct_gpu_hours(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    profile = str(budget_profile(tmp_path, 0.1))  # 2 GPUs x 10 min = 0.33: over it
    args = ["recipe", "tiny_smoke", "--cluster", profile, "--set", "resources.gpus_per_node=2"]
    refused = launch(*args)
    assert refused.returncode == 2 and "limits.max_gpu_hours" in refused.stderr
    run_id = launch(*args, "--force", check=True).stdout.strip()
    wait_for(lambda: run_state(launch, run_id) == "completed", timeout=90, every=1.0)
    status = json.loads(launch("status", run_id, "--json", check=True).stdout)
    job = status["job_ids"][0]
    sacct = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-D", "-o", "JobID,ElapsedRaw,AllocTRES", "-j", job],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    records = [line.split("|") for line in sacct.splitlines() if line.split("|")[0] == job]
    assert records and all("gres/gpu=2" in r[2] for r in records)
    expected = sum(int(r[1]) for r in records) * 2 / 3600
    assert status["gpu_hours"] == pytest.approx(expected, abs=1e-6)
    usage = json.loads((Path(status["run_dir"]) / "usage.json").read_text())
    assert usage["gpu_hours"] == status["gpu_hours"] and usage["source"] == "slurm"
    assert "GPU-hours" in launch("status", run_id, check=True).stdout
