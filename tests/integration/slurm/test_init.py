"""`launch init` on a login node of the real dev Slurm cluster (cluster/dev/slurm-up.sh): the profile
it writes describes the cluster as sinfo reports it, the research's recipes check against it, and a
job submitted with it runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.cli import Launch, require_slurm

pytestmark = pytest.mark.slurm


def _sinfo_default() -> list[str]:
    """The default partition's line of `sinfo -h -o '%P|%c|%m|%G|%D'`, its fields."""
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P|%c|%m|%G|%D"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return next(line.split("|") for line in out.splitlines() if line.split("|")[0].endswith("*"))


def test_init_writes_the_clusters_profile_and_tiny_ner_checks_against_it(
    launch: Launch, tmp_path: Path
) -> None:
    require_slurm()
    proc = launch("init", check=True)
    profile_path = tmp_path / "cluster" / "dev.yaml"
    assert f"wrote {profile_path}" in proc.stdout and f"wrote {tmp_path / 'launch.toml'}" in proc.stdout
    assert "next: launch recipe example --cluster dev --dry-run" in proc.stdout, proc.stdout

    partition, cpus, mem_mb, gres, nodes = _sinfo_default()
    _, gpu_type, per_node = gres.split(":")
    profile = yaml.safe_load(profile_path.read_text())
    assert profile["slurm"]["partition"] == partition.rstrip("*") == "gpu"
    assert profile["gpu"] == {"type": gpu_type, "memory_gb": 80, "per_node": int(per_node), "bf16": True}
    assert profile["node"] == {"cpus": int(cpus), "mem_gb": int(mem_mb) // 1024}
    assert profile["limits"] == {"max_nodes": int(nodes), "max_time": None}  # MaxTime=UNLIMITED
    assert profile["slurm"]["gres_type"] == gpu_type

    rows = [
        [c.strip() for c in line.split("│")[1:3]]
        for line in launch("clusters", check=True).stdout.splitlines()
    ]
    assert ["dev", "project"] in rows
    dry = launch("recipe", "tiny_ner", "--cluster", "dev", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        "#SBATCH --partition=gpu\n" in dry.stdout
        and f" {profile['slurm']['python']} -m jobs.train " in dry.stdout
    )
    assert launch("recipe", "example", "--cluster", "dev", "--dry-run").returncode == 0

    again = launch("init")
    assert again.returncode == 2 and f"{profile_path}: exists" in again.stderr, again.stderr


def test_a_job_runs_with_the_written_profile(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    launch("init", "--partition", "gpu", check=True)
    proc = launch(
        "recipe", "example", "--cluster", "dev", "--follow", "--set", "train.max_steps=3",
        "--set", "env.SMOKE_STEP_SECONDS=0", check=True, timeout=180,
    )  # fmt: skip
    assert "step 3/3" in proc.stdout and "done" in proc.stdout, proc.stdout
