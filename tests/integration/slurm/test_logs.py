"""`launch logs` labels and --merged on one Slurm smoke job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Launch
from tests.support.logs import EXPECTED_MERGED, SMOKE_BOTH


@pytest.mark.slurm
def test_labels_and_merged_on_slurm(launch: Launch, tmp_path: Path) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    proc = launch("recipe", "tiny_smoke", "-c", "dev-slurm", "--follow", *SMOKE_BOTH, check=True, timeout=180)
    run_id = proc.stdout.split()[0]
    job_id = json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())["job_ids"][0]
    assert (tmp_path / "runs" / run_id / "logs" / f"{job_id}.times").exists()
    merged = launch("logs", run_id, "--merged", check=True).stdout.splitlines()
    steps = [line for line in merged if "step" in line and "smoke job" not in line]
    assert steps == [line for line in EXPECTED_MERGED if "step" in line and "smoke job" not in line]
