"""Slurm dry runs through the CLI: the script is printed and no scheduler command is called; profile
limits apply before sbatch (stand-in scheduler commands on PATH, no cluster)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.cli import Launch

SCHEDULER_COMMANDS = ("sbatch", "sinfo", "squeue", "sacct", "scontrol", "scancel", "srun", "salloc")


def _fake_scheduler(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH directory whose Slurm commands only record that they were called."""
    bin_dir, marker = tmp_path / "fakebin", tmp_path / "scheduler-called"
    bin_dir.mkdir()
    for name in SCHEDULER_COMMANDS:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {marker}\nexit 1\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir, marker


def test_dry_run_prints_the_script_and_calls_no_scheduler_command(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir, marker = _fake_scheduler(tmp_path)
    launch_env["PATH"] = f"{bin_dir}{os.pathsep}{launch_env['PATH']}"
    proc = launch(
        "recipe", "ds7b_fft", "--cluster", "a800", "--set", "resources.nodes=2", "--dry-run", check=True
    )
    assert proc.stdout.startswith("#!/bin/bash\n\n# Parameters\n#SBATCH --cpus-per-task=96\n")
    assert "#SBATCH --nodes=2" in proc.stdout and "torch.distributed.run" in proc.stdout
    assert not marker.exists(), marker.read_text()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("resources.gpus_per_node=9", "resources.gpus_per_node: 9 is more than the 8 GPUs"),
        ("resources.nodes=3", "resources.nodes: 3 is more than cluster 'dev-slurm' allows; valid: 1-2"),
        ("resources.time=25:00:00", "resources.time: 25:00:00 is longer than the 24:00:00 limit"),
    ],
)
def test_profile_limits_apply_before_sbatch(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path, override: str, key: str
) -> None:
    bin_dir, marker = _fake_scheduler(tmp_path)
    launch_env["PATH"] = f"{bin_dir}{os.pathsep}{launch_env['PATH']}"
    proc = launch("recipe", "tiny_smoke", "--cluster", "dev-slurm", "--set", override)
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not marker.exists()
