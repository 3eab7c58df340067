"""The Slurm backend against the dev cluster and stand-in scheduler commands: one squeue per refresh,
hung squeue and sacct, an sbatch answer without a job id, impossible requests refused or explained."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from launcher.backends.slurm.parse import NEVER_STARTS_REASONS
from tests.support.cli import Launch, require_slurm

pytestmark = pytest.mark.slurm

GPU = "gpu: {type: a800, memory_gb: 80, per_node: 8, bf16: true}\n"

BIG_NODE = "node: {cpus: 96, mem_gb: 2000}\n"

"""What the a800 profile claims of its nodes: more than the dev cluster's 32 CPUs and 20 GB."""


def _profile(tmp_path: Path, name: str, slurm: str = "{partition: gpu, gres_type: a800}") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"# test profile\nname: {name}\nbackend: slurm\n{GPU}{BIG_NODE}slurm: {slurm}\n")
    return path


def _stand_ins(tmp_path: Path, scripts: dict[str, str]) -> Path:
    """A bin directory with `name` scripts; each logs its call to calls.log first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> {bin_dir}/calls.log\n{body}\n')
        path.chmod(0o755)
    return bin_dir


def _calls(bin_dir: Path, name: str) -> int:
    log = bin_dir / "calls.log"
    return sum(line.startswith(name + " ") for line in log.read_text().splitlines()) if log.exists() else 0


def _held_runs(launch: Launch, tmp_path: Path, count: int) -> list[str]:
    """`count` runs held in the queue (sbatch --hold): pending for ever, cheap, cancelled after."""
    # poll_interval_s 0: each `launch status` asks squeue itself (no answer shared a moment ago)
    held = _profile(
        tmp_path, "held", "{partition: gpu, gres_type: a800, poll_interval_s: 0, extra: {hold: true}}"
    )
    return [
        launch("recipe", "tiny_smoke", "--cluster", str(held), check=True).stdout.split()[0]
        for _ in range(count)
    ]


def _cancel(launch: Launch, launch_env: dict[str, str], run_ids: list[str]) -> None:
    for run_id in run_ids:
        launch("cancel", run_id)


def test_one_refresh_is_one_squeue_call_however_many_runs(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    require_slurm()
    runs = _held_runs(launch, tmp_path, 5)
    try:
        bin_dir = _stand_ins(tmp_path, {t: f'exec /usr/bin/{t} "$@"' for t in ("squeue", "sacct")})
        launch_env["PATH"] = f"{bin_dir}:{launch_env['PATH']}"
        table = launch("status", check=True).stdout
        assert all(run_id in table for run_id in runs) and table.count("pending") == 5
        assert (_calls(bin_dir, "squeue"), _calls(bin_dir, "sacct")) == (1, 0)
    finally:
        launch_env["PATH"] = os.environ["PATH"]
        _cancel(launch, launch_env, runs)


def test_status_with_hung_squeue_and_sacct_answers_within_the_timeout(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """Before: per-job squeue/sacct calls from explain() and restarts(), each allowed 60 s."""
    require_slurm()
    runs = _held_runs(launch, tmp_path, 5)
    try:
        assert launch("status", check=True).stdout.count("pending") == 5  # the states last seen
        # `sleep` as a child (no exec): the wrapper's child holds the pipes open after bash is killed
        bin_dir = _stand_ins(tmp_path, {"squeue": "sleep 300", "sacct": "sleep 300"})
        launch_env.update(PATH=f"{bin_dir}:{launch_env['PATH']}", LAUNCH_SLURM_TIMEOUT="2")
        started = time.monotonic()
        proc = launch("status", timeout=60)
        took = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        assert took < 20, f"launch status took {took:.0f} s with hung Slurm tools"
        assert "Slurm did not answer in 2 s (squeue); states as last seen" in proc.stderr
        assert proc.stdout.count("pending") == 5
        assert (_calls(bin_dir, "squeue"), _calls(bin_dir, "sacct")) == (1, 0)
        detail = launch("status", runs[0], timeout=60)
        assert detail.returncode == 0 and "pending" in detail.stdout
        assert "did not answer" in detail.stderr
    finally:
        launch_env.pop("LAUNCH_SLURM_TIMEOUT", None)
        launch_env["PATH"] = os.environ["PATH"]
        _cancel(launch, launch_env, runs)


def test_an_sbatch_answer_without_a_job_id_is_an_error(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    require_slurm()
    bin_dir = _stand_ins(tmp_path, {"sbatch": "echo 'Submitted batch job maybe'"})
    launch_env["PATH"] = f"{bin_dir}:{launch_env['PATH']}"
    proc = launch("recipe", "tiny_smoke", "--cluster", "dev-slurm")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        "error: sbatch answered without a job id ('Submitted batch job maybe'); whether a job was "
        "queued is unknown: check `squeue --me`"
    )
    assert _calls(bin_dir, "sbatch") == 1
    assert not list((tmp_path / "runs").glob("*/launch.json"))
    launch_env["PATH"] = os.environ["PATH"]
    assert "runs (0)" in launch("status", check=True).stdout


def test_more_cpus_than_any_node_has_is_refused_before_sbatch(launch: Launch, tmp_path: Path) -> None:
    """Before: queued and PENDING (PartitionConfig) for ever; the profile's node claims 96 CPUs."""
    require_slurm()
    big = _profile(tmp_path, "big")
    proc = launch("recipe", "tiny_smoke", "--cluster", str(big), "--set", "resources.cpus_per_gpu=40")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().endswith(
        "resources.cpus_per_gpu: the task needs 40 CPUs but the nodes of partition 'gpu' have at most 32; "
        "valid: cpus_per_gpu x ranks per node <= 32"
    )
    proc = launch("recipe", "tiny_smoke", "--cluster", str(big), "--set", "resources.mem_gb=64")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().endswith(
        "resources.mem_gb: 64 is more than the 20 GB of memory of any node of partition 'gpu' with 1 CPUs; "
        "valid: at most 20"
    )
    assert not (tmp_path / "runs").exists()
    assert "runs (0)" in launch("status", check=True).stdout


def test_a_job_slurm_will_never_start_says_so(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """The profile's own sbatch options ask for 96 CPUs (past the pre-flight check): PartitionConfig."""
    require_slurm()
    odd = _profile(tmp_path, "odd", "{partition: gpu, gres_type: a800, extra: {cpus_per_task: 96}}")
    run_id = launch("recipe", "tiny_smoke", "--cluster", str(odd), check=True).stdout.split()[0]
    try:
        deadline = time.monotonic() + 30
        while True:
            proc = launch("status", check=True)
            if "will never start" in proc.stderr or time.monotonic() > deadline:
                break
            time.sleep(1)
        why = NEVER_STARTS_REASONS["PartitionConfig"]
        line = (
            f"warning: {run_id}: will never start: PartitionConfig ({why}); "
            "`launch cancel` it and ask for less"
        )
        assert line in proc.stderr.splitlines()
        assert "will never start: PartitionConfig" in launch("status", run_id, check=True).stdout
    finally:
        _cancel(launch, launch_env, [run_id])


def test_cancel_with_a_hung_squeue_says_the_cancel_was_sent(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """It took 52 s and printed `pending` although scancel went through."""
    require_slurm()
    runs = _held_runs(launch, tmp_path, 1)
    try:
        bin_dir = _stand_ins(tmp_path, {"squeue": "sleep 300", "sacct": "sleep 300"})
        launch_env.update(PATH=f"{bin_dir}:{launch_env['PATH']}", LAUNCH_SLURM_TIMEOUT="2")
        started = time.monotonic()
        proc = launch("cancel", runs[0], timeout=60)
        took = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        assert took < 15, f"launch cancel took {took:.0f} s with a hung squeue"
        assert proc.stdout.strip() == f"{runs[0]}: cancel sent; Slurm did not answer in 2 s (squeue)"
    finally:
        launch_env.pop("LAUNCH_SLURM_TIMEOUT", None)
        launch_env["PATH"] = os.environ["PATH"]
    assert launch("status", runs[0], check=True).stdout.count("cancelled") >= 1
