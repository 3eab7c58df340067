"""The local backend when processes die, PIDs are reused, users share the GPUs, directories vanish."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from launcher.backends.local import STATE_FILE, LocalBackend
from launcher.backends.procs import Proc, boot_id, start_ticks
from launcher.config.cluster import load_cluster
from launcher.runs.state import RunState
from tests.support.cli import Launch, cli_runner, isolated_env, run_state, wait_for

ONE_GPU = """\
# one pretend GPU (the jobs never touch it)
name: onegpu
backend: local
gpu: {type: test, memory_gb: 1, per_node: 1, bf16: true}
limits: {max_nodes: 1}
local: {gpu_ids: [0]}
"""

LONG = ["--set", "train.max_steps=3000", "--set", "train.save_steps=3000"]


def _job_id(runs: Path, run_id: str) -> str:
    return str(json.loads((runs / run_id / "launch.json").read_text())["job_ids"][0])


def _job_pid(run_dir: Path) -> int:
    """The job's own process (python -m jobs.smoke), found as a user would, with pgrep."""
    found: list[int] = []

    def find() -> bool:
        out = subprocess.run(["pgrep", "-f", "--", f"jobs.smoke --run-dir {run_dir}"], capture_output=True)
        found[:] = [int(p) for p in out.stdout.split()]
        return bool(found)

    wait_for(find, timeout=20)
    return found[0]


def _alive(pid: int) -> bool:
    proc = Proc(pid)
    return proc.alive()


def _detail(launch: Launch, run_id: str) -> str:
    return str(launch("status", run_id, check=True).stdout)


def _profile(tmp_path: Path) -> str:
    path = tmp_path / "onegpu.yaml"
    path.write_text(ONE_GPU)
    return str(path)


def test_killed_supervisor_takes_its_job_and_the_gpu_stays_held_until_cancel(
    launch: Launch, tmp_path: Path
) -> None:
    profile = _profile(tmp_path)
    env = "env={SMOKE_STEP_SECONDS: '0.1', SMOKE_CHILD: '1'}"
    first = launch("recipe", "tiny_smoke", "-c", profile, *LONG, "--set", env, "--set",
                   "resources.gpus_per_node=1", check=True).stdout.split()[0]  # fmt: skip
    run_dir = tmp_path / "runs" / first
    log = run_dir / "logs" / "task0.out"
    wait_for(lambda: log.exists() and "step 2/" in log.read_text())
    supervisor = int(_job_id(tmp_path / "runs", first).split("@")[0])
    job = _job_pid(run_dir)
    child = int(log.read_text().split("child process ")[1].split()[0])
    second = launch("recipe", "tiny_smoke", "-c", profile, "--set", "train.max_steps=2",
                    "--set", "resources.gpus_per_node=1", check=True).stdout.split()[0]  # fmt: skip

    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not _alive(job), timeout=10)  # the job died with its supervisor
    assert _alive(child)
    detail = _detail(launch, first)
    assert run_state(launch, first) == "running", detail  # its child still runs and holds the GPU
    assert "supervisor died" in detail
    assert run_state(launch, second) == "pending"
    assert "waiting for 1 free GPU(s)" in _detail(launch, second)

    assert "cancelled" in launch("cancel", first, check=True).stdout
    assert not _alive(child)
    assert run_state(launch, first) == "cancelled"
    wait_for(lambda: run_state(launch, second) == "completed", timeout=60)
    assert "CUDA_VISIBLE_DEVICES=0\n" in (tmp_path / "runs" / second / "logs" / "task0.out").read_text()


def test_killed_supervisor_without_survivors_fails_and_says_why(launch: Launch, tmp_path: Path) -> None:
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *LONG, check=True).stdout.split()[0]
    wait_for(lambda: run_state(launch, run_id) == "running")
    job = _job_pid(tmp_path / "runs" / run_id)
    os.kill(int(_job_id(tmp_path / "runs", run_id).split("@")[0]), signal.SIGKILL)
    wait_for(lambda: not _alive(job), timeout=10)
    assert run_state(launch, run_id) == "failed"
    assert "the supervisor died before the job ended" in _detail(launch, run_id)


def test_a_reused_pid_is_not_the_run(launch_env: dict[str, str], tmp_path: Path) -> None:
    """A job id whose PID now belongs to another process (its start time or boot differs)."""
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        start = start_ticks(other.pid)
        assert start is not None
        run_dir = tmp_path / "runs" / "r1"
        run_dir.mkdir(parents=True)
        (run_dir / STATE_FILE).write_text(json.dumps({"state": "running"}))
        state_dir = Path(launch_env["LAUNCH_HOME"]) / "local"
        state_dir.mkdir(parents=True)
        stale, rebooted = f"{other.pid}@{start + 1}", f"{other.pid}@{start}"
        (state_dir / f"{stale}.json").write_text(json.dumps({"run_dir": str(run_dir), "boot": boot_id()}))
        (state_dir / f"{rebooted}.json").write_text(json.dumps({"run_dir": str(run_dir), "boot": "x"}))
        backend = LocalBackend(load_cluster("local"))
        assert backend.status([stale, rebooted]) == {stale: RunState.FAILED, rebooted: RunState.FAILED}
        backend.cancel(stale)
        backend.cancel(rebooted)
        assert other.poll() is None, "cancel killed a process that reused the run's PID"
        # a job id from before start times were recorded is matched by its PID alone
        (state_dir / f"{other.pid}.json").write_text(json.dumps({"run_dir": str(run_dir)}))
        assert backend.status([str(other.pid)]) == {str(other.pid): RunState.RUNNING}
    finally:
        other.kill()
        other.wait()


def test_two_launch_homes_share_one_gpu_table(launch: Launch, tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    args = ["-c", profile, "--set", "resources.gpus_per_node=1", "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]
    first = launch("recipe", "tiny_smoke", *args, *LONG, check=True).stdout.split()[0]
    wait_for(lambda: run_state(launch, first) == "running")
    (tmp_path / "other").mkdir()
    other_env = isolated_env(tmp_path / "other")  # another user's $LAUNCH_HOME, the same machine
    other_env["LAUNCH_GPU_TABLE"] = str(tmp_path / "gpus")
    other = cli_runner(other_env)
    proc = other("recipe", "tiny_smoke", *args, "--set", "train.max_steps=2")
    assert proc.returncode == 0, proc.stderr
    second = proc.stdout.split()[0]

    def other_state() -> str:
        out = other("status", second).stdout
        return next(line.split()[1] for line in out.splitlines() if line.startswith("state"))

    wait_for(lambda: "waiting for 1 free GPU(s)" in other("status", second).stdout, timeout=20)
    assert other_state() == "pending"
    launch("cancel", first, check=True)
    wait_for(lambda: other_state() == "completed", timeout=60)


def test_time_limit_escalates_to_sigkill(launch: Launch, launch_env: dict[str, str], tmp_path: Path) -> None:
    launch_env["LAUNCH_KILL_GRACE_S"] = "2"
    env = "env={SMOKE_IGNORE_TERM: '1', SMOKE_STEP_SECONDS: '0.1'}"
    args = ["--set", "resources.time=00:02", "--set", env]
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *LONG, *args, check=True).stdout.split()[0]
    wait_for(lambda: run_state(launch, run_id) == "running")
    job = _job_pid(tmp_path / "runs" / run_id)
    wait_for(lambda: run_state(launch, run_id) == "timeout", timeout=30)
    assert not _alive(job)
    detail = _detail(launch, run_id)
    assert "time limit" in detail and "killed" in detail


def test_cancel_after_the_run_directory_was_deleted(launch: Launch, tmp_path: Path) -> None:
    """Also the profile file it was submitted with: cancel needs neither."""
    profile = tmp_path / "mybox.yaml"
    profile.write_text("name: mybox\nbackend: local\n")
    args = ["--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]
    run_id = launch("recipe", "tiny_smoke", "-c", str(profile), *LONG, *args, check=True).stdout.split()[0]
    run_dir = tmp_path / "runs" / run_id
    wait_for(lambda: run_state(launch, run_id) == "running")
    # "running" is recorded when the job's process starts; deleted before the job has read its
    # recipe, the job fails on its own and cancel has nothing left to do
    wait_for(lambda: "step 1/" in (run_dir / "logs" / "task0.out").read_text())
    job = _job_pid(run_dir)
    supervisor = int(_job_id(tmp_path / "runs", run_id).split("@")[0])
    shutil.rmtree(run_dir)
    profile.unlink()
    detail = launch("status", run_id, check=True).stdout  # it said `unknown`
    assert run_state(launch, run_id) == "running", detail
    assert f"{run_dir} (gone: deleted?)" in detail
    assert f"its run directory {run_dir} is gone (deleted?); its processes run until" in detail
    proc = launch("cancel", run_id)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    wait_for(lambda: not _alive(job) and not _alive(supervisor), timeout=10)
    assert run_state(launch, run_id) == "cancelled"


def test_failed_run_shows_its_error_line(launch: Launch, launch_env: dict[str, str]) -> None:
    launch_env["HF_HUB_OFFLINE"] = "1"
    proc = launch("recipe", "tiny_ner", "-c", "local", "--follow", "--set",
                  "model.name_or_path=org/does-not-exist", timeout=300)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_id = proc.stdout.split()[0]
    lines = _detail(launch, run_id).splitlines()
    error = next((line for line in lines if line.startswith("error ")), "")
    assert "OSError: We couldn't connect" in error, lines  # the exception, not the hint after it
