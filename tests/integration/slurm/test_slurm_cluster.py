"""The Slurm backend on the real single-node test cluster (cluster/dev): nothing here fakes Slurm.

Start the cluster first: `bash cluster/dev/slurm-up.sh`. Without it these tests fail, not skip.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from launcher.backends.slurm.backend import SlurmBackend
from launcher.config.cluster import load_cluster
from launcher.runs import service as launching
from launcher.runs.registry import Registry
from tests.support.cli import Launch, require_slurm, run_state, wait_for

pytestmark = pytest.mark.slurm

FAST = "env={SMOKE_STEP_SECONDS: '0.25'}"


def _slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=True).stdout


def _job_id(runs: Path, run_id: str) -> str:
    return str(json.loads((runs / run_id / "launch.json").read_text())["job_ids"][0])


def _submit(launch: Launch, *args: str) -> str:
    return str(launch("recipe", "tiny_smoke", "--cluster", "dev-slurm", *args, check=True).stdout.split()[0])


def _log(runs: Path, run_id: str) -> str:
    path = runs / run_id / "logs" / f"{_job_id(runs, run_id)}.out"
    return path.read_text() if path.exists() else ""


def test_tiny_job_completes_and_submit_sh_is_what_slurm_ran(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    proc = launch(
        "recipe", "tiny_smoke", "--cluster", "dev-slurm", "--follow", "--set", "train.max_steps=6",
        check=True, timeout=120,
    )  # fmt: skip
    run_id = proc.stdout.split()[0]
    assert "step 6/6" in proc.stdout and "done" in proc.stdout
    run_dir = tmp_path / "runs" / run_id
    job_id = _job_id(tmp_path / "runs", run_id)
    names = sorted(p.name for p in (run_dir / "logs").iterdir())
    assert names == [f"{job_id}.err", f"{job_id}.out", f"{job_id}.times"]  # .times: when lines were written
    assert _slurm("scontrol", "write", "batch_script", job_id, "-") == (run_dir / "submit.sh").read_text()
    assert run_state(launch, run_id) == "completed"
    assert "step 1/6" in launch("logs", run_id, check=True).stdout


def test_array_of_three_with_a_parallelism_cap(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    overrides = ["train.max_steps=8", FAST]
    prepared = [launching.prepare("tiny_smoke", "dev-slurm", overrides) for _ in range(3)]
    job_ids = launching.submit_many(prepared, Registry(), max_parallel=2)
    array_id = job_ids[0].split("_")[0]
    assert job_ids == [f"{array_id}_{i}" for i in range(3)]
    assert _slurm("scontrol", "show", "job", array_id).count("ArrayTaskThrottle=2") >= 1

    seen_throttled, most_running = False, 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        lines = _slurm("squeue", "-h", "-r", "-j", array_id, "-o", "%i %T %r").splitlines()
        if not lines:
            break
        most_running = max(most_running, sum(" RUNNING " in f"{line} " for line in lines))
        seen_throttled |= any("JobArrayTaskLimit" in line for line in lines)
        time.sleep(0.3)
    assert most_running <= 2 and seen_throttled

    runs = [p.run for p in prepared]
    for run, job_id in zip(runs, job_ids, strict=True):
        wait_for(lambda run=run: run_state(launch, run.run_id) == "completed", timeout=30, every=1)
        out = (run.run_dir / "logs" / f"{job_id}.out").read_text()
        assert "[launch] job " in out and "step 8/8" in out
        assert (run.run_dir / "checkpoints" / "checkpoint-8" / "COMPLETE").exists()
        assert (run.run_dir / "submit.sh").read_text() == (runs[0].run_dir / "submit.sh").read_text()
    table = launch("status", check=True).stdout
    for job_id in job_ids:
        assert job_id in table


def test_two_gpu_task_sees_two_distinct_devices(launch: Launch) -> None:
    require_slurm()
    args = ["--follow", "--set", "resources.gpus_per_node=2", "--set", "train.max_steps=2"]
    proc = launch("recipe", "tiny_smoke", "--cluster", "dev-slurm", *args, check=True, timeout=120)
    devices = re.search(r"^out\| CUDA_VISIBLE_DEVICES=(\S*)$", proc.stdout, re.M)  # stdout is labelled
    assert devices, proc.stdout
    ids = devices.group(1).split(",")
    assert len(ids) == 2 and len(set(ids)) == 2, ids


def test_cancel_a_running_job(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    runs = tmp_path / "runs"
    run_id = _submit(launch, "--set", "train.max_steps=1000", "--set", "env={SMOKE_STEP_SECONDS: '0.1'}")
    wait_for(lambda: "step 3/" in _log(runs, run_id), timeout=60)
    assert run_state(launch, run_id) == "running"
    assert launch("cancel", run_id, check=True).stdout.strip().endswith("cancelled")
    assert run_state(launch, run_id) == "cancelled"
    job_id = _job_id(runs, run_id)
    backend = SlurmBackend(load_cluster("dev-slurm"))
    wait_for(lambda: job_id in backend.accounting([job_id]), timeout=30, every=1)
    wait_for(lambda: backend.accounting([job_id])[job_id].state.startswith("CANCELLED"), timeout=30, every=1)
    pattern = f"--run-dir {runs / run_id}"
    wait_for(lambda: subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True).returncode == 1)


def test_usr2_checkpoints_requeues_and_resumes_to_the_right_steps(launch: Launch, tmp_path: Path) -> None:
    """USR2 the way Slurm sends it before a time limit (to the batch shell, `B:`), then straight to
    the step; each time the job checkpoints, exits 3, is requeued and resumes."""
    require_slurm()
    runs = tmp_path / "runs"
    run_id = _submit(launch, "--set", "train.max_steps=40", "--set", "train.save_steps=100", "--set", FAST)
    job_id = _job_id(runs, run_id)
    wait_for(lambda: "step 6/40" in _log(runs, run_id), timeout=60)
    _slurm("scancel", "--batch", "--signal=USR2", job_id)
    wait_for(lambda: "restart 1" in _log(runs, run_id), timeout=60, every=0.5)
    wait_for(lambda: "step 28/40" in _log(runs, run_id), timeout=60)
    _slurm("scancel", "--signal=USR2", job_id)
    wait_for(lambda: run_state(launch, run_id) == "completed", timeout=90, every=1)

    log = _log(runs, run_id)
    steps = [int(n) for n in re.findall(r"^step (\d+)/40$", log, re.M)]
    assert steps == list(range(1, 41)), steps
    stops = [int(n) for n in re.findall(r"checkpointed at step (\d+)", log)]
    resumes = [int(n) for n in re.findall(r"resuming from step (\d+)", log)]
    assert len(stops) == 2 and resumes == [0, *stops], (stops, resumes)
    assert log.count("[launch] job ") == 3
    assert json.loads((runs / run_id / "results" / "smoke.json").read_text()) == {"steps": 40}
    detail = launch("status", run_id, check=True).stdout
    assert re.search(r"^restarts\s+2$", detail, re.M), detail
    backend = SlurmBackend(load_cluster("dev-slurm"))
    wait_for(lambda: job_id in backend.accounting([job_id]), timeout=30, every=1)
    wait_for(lambda: backend.accounting([job_id])[job_id].state == "COMPLETED", timeout=30, every=1)
    assert backend.accounting([job_id])[job_id].restarts == 2


def _profile(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"# test profile\nname: {name}\nbackend: slurm\n{body}")
    return path


def test_partition_and_gpu_type_are_checked_before_sbatch(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    gpu = "gpu: {type: a800, memory_gb: 80, per_node: 8, bf16: true}\n"
    bad_partition = _profile(tmp_path, "nopart", gpu + "slurm: {partition: gpus, gres_type: a800}\n")
    proc = launch("recipe", "tiny_smoke", "--cluster", str(bad_partition))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {bad_partition}: slurm.partition: 'gpus' is not a partition of this Slurm cluster "
        "(did you mean 'gpu'?); valid: 2080ti, gpu"
    )
    h100 = "gpu: {type: h100, memory_gb: 80, per_node: 8, bf16: true}\n"
    bad_type = _profile(tmp_path, "h100", h100 + "slurm: {partition: gpu, gres_type: h100}\n")
    proc = launch("recipe", "tiny_smoke", "--cluster", str(bad_type), "--set", "resources.gpus_per_node=1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {bad_type}: slurm.gres_type: 'h100' is not offered by partition 'gpu'; valid: a800"
    )
    assert not (tmp_path / "runs").exists()
    assert "runs (0)" in launch("status", check=True).stdout


@pytest.mark.slow
def test_tiny_training_job_runs_on_slurm(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    sets = ["train.max_steps=20", "train.save_steps=10", "data.max_train_samples=200",
            "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    proc = launch("recipe", "tiny_ner", "--cluster", "dev-slurm", "--follow", *args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    summary = json.loads((run_dir / "results" / "train.json").read_text())
    assert summary["global_step"] == 20
    assert (run_dir / "checkpoints" / "checkpoint-20" / "COMPLETE").exists()
