"""`launch sweep` on the dev Slurm cluster: one array throttled to --max-parallel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Launch, require_slurm, wait_for
from tests.support.sweeps import FAST, GRID, POINTS, launch_info, submit_sweep, sweep_states

pytestmark = pytest.mark.slurm


def test_slurm_sweep_is_one_array_throttled_to_two(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    sweep_id, runs = submit_sweep(launch, *GRID, "--set", FAST, "--max-parallel", "2", cluster="dev-slurm")
    job_ids = [launch_info(tmp_path, r)["job_ids"][0] for r in runs]
    array = job_ids[0].split("_")[0]
    assert job_ids == [f"{array}_{i}" for i in range(4)]
    script = (tmp_path / "runs" / runs[0] / "submit.sh").read_text()
    assert "#SBATCH --array=0-3%2" in script
    show = subprocess.run(
        ["scontrol", "show", "job", array], capture_output=True, text=True, timeout=30
    ).stdout
    assert "ArrayTaskThrottle=2" in show or "COMPLETED" in show
    wait_for(lambda: set(sweep_states(launch, sweep_id).values()) == {"completed"}, timeout=120, every=1)
    for run_id, point in zip(runs, POINTS, strict=True):
        info = launch_info(tmp_path, run_id)
        assert info["sweep_point"] == point and info["overrides"][-2:] == [
            f"train.lr={point['train.lr']!r}", f"train.max_steps={point['train.max_steps']}"
        ]  # fmt: skip
        assert (
            tmp_path / "runs" / run_id / "checkpoints" / f"checkpoint-{point['train.max_steps']}"
        ).is_dir()
