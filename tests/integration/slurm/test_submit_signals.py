"""A submit stopped while sbatch runs (issue 26 item 6): killed during `sbatch`, a run stayed
`submitting` with no job id while its Slurm job ran, and `launch cancel` refused it. Now SIGTERM
takes the error's clean-up path and records a job that reached Slurm (found by its name), and
`launch cancel` ends any `submitting` row after asking Slurm. sbatch is a slow stand-in first on
PATH: the real sbatch then a sleep (the job reaches Slurm), or a sleep then the real sbatch."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import Launch, require_slurm

pytestmark = pytest.mark.slurm

HELD = (
    "name: held\nbackend: slurm\ngpu: {type: a800, memory_gb: 80, per_node: 8, bf16: true}\n"
    "node: {cpus: 16, mem_gb: 16}\nslurm: {partition: gpu, gres_type: a800, extra: {hold: true}}\n"
)
AFTER = '/usr/bin/sbatch "$@"; rc=$?; sleep 60; exit $rc'
BEFORE = 'sleep 60; exec /usr/bin/sbatch "$@"'


def _submit_and_stop(launch_env: dict[str, str], tmp_path: Path, sbatch: str, sig: int) -> str:
    """`launch recipe tiny_smoke` on the held profile, stopped by `sig` while sbatch sleeps; its run id."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sbatch").write_text(f"#!/bin/bash\ntouch {bin_dir}/started\n{sbatch}\n")
    (bin_dir / "sbatch").chmod(0o755)
    (tmp_path / "held.yaml").write_text(HELD)
    env = {**launch_env, "PATH": f"{bin_dir}:{launch_env['PATH']}"}
    held = str(tmp_path / "held.yaml")
    before = set((tmp_path / "runs").glob("tiny_smoke-*"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "--cluster", held],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (bin_dir / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "sbatch was not called"
        time.sleep(0.05)
    time.sleep(2)  # the real sbatch has answered (AFTER) or not been called (BEFORE)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    # kill -9 leaves the stand-in running (its own session): stop it as a closed terminal would
    subprocess.run(["pkill", "-f", str(bin_dir / "sbatch")], check=False)
    (bin_dir / "started").unlink()
    new = set((tmp_path / "runs").glob("tiny_smoke-*")) - before
    assert len(new) <= 1, new
    return new.pop().name if new else ""


def _row(launch_env: dict[str, str], run_id: str) -> tuple[str, ...] | None:
    with sqlite3.connect(Path(launch_env["LAUNCH_HOME"]) / "registry.db") as db:
        return db.execute("SELECT state FROM runs WHERE run_id=?", (run_id,)).fetchone()


def _squeue_names() -> str:
    return subprocess.run(["squeue", "-h", "--me", "-o", "%j"], capture_output=True, text=True).stdout


def test_sigterm_after_the_job_reached_slurm_records_it(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    require_slurm()
    run_id = _submit_and_stop(launch_env, tmp_path, AFTER, signal.SIGTERM)
    try:
        assert run_id and run_id in _squeue_names()
        assert _row(launch_env, run_id) == ("pending",)
        info = json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())
        assert len(info["job_ids"]) == 1
    finally:
        if run_id:
            assert launch("cancel", run_id).stdout.strip() == f"{run_id}: cancelled"


def test_sigterm_before_the_job_reached_slurm_leaves_nothing(
    launch_env: dict[str, str], tmp_path: Path
) -> None:
    require_slurm()
    before = _squeue_names()
    run_id = _submit_and_stop(launch_env, tmp_path, BEFORE, signal.SIGTERM)
    assert run_id == ""  # no run directory
    time.sleep(1)
    assert _squeue_names() == before  # the stand-in was stopped before it called sbatch


def test_cancel_ends_a_row_left_submitting(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """kill -9 (no clean-up can run): the row stays `submitting`; cancel asks Slurm, finds the job by
    its name, and cancels it; a row whose job never reached Slurm just ends."""
    require_slurm()
    reached = _submit_and_stop(launch_env, tmp_path, AFTER, signal.SIGKILL)
    assert _row(launch_env, reached) == ("submitting",)
    assert reached in _squeue_names()
    proc = launch("cancel", reached)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{reached}: cancelled"
    assert reached not in _squeue_names()
    never = _submit_and_stop(launch_env, tmp_path, BEFORE, signal.SIGKILL)
    assert never != reached and _row(launch_env, never) == ("submitting",)
    proc = launch("cancel", never)
    assert proc.stdout.strip() == f"{never}: cancelled", proc.stderr
    assert "no job of it had reached the scheduler" in launch("status", never, check=True).stdout
