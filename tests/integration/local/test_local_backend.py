"""The local backend with real processes: submit, watch, logs, GPU queueing, cancel, outcomes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.cli import Launch, run_state, wait_for

FAKE_GPUS = """\
# two pretend GPUs for queueing tests (the jobs never touch them)
name: twogpu
backend: local
gpu: {type: test, memory_gb: 1, per_node: 2, bf16: true}
limits: {max_nodes: 1}
local: {gpu_ids: [0, 1]}
"""


def _submit(launch: Launch, *args: str) -> str:
    proc = launch("recipe", "tiny_smoke", *args, check=True)
    return proc.stdout.splitlines()[0]


def test_run_completes_with_run_directory(launch: Launch, tmp_path: Path) -> None:
    proc = launch("recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "train.max_steps=4", check=True)
    run_id = proc.stdout.splitlines()[0]
    assert run_id.startswith("tiny_smoke-")
    assert "step 4/4" in proc.stdout
    run_dir = tmp_path / "runs" / run_id
    assert {p.name for p in run_dir.iterdir()} >= {"recipe.yaml", "launch.json", "submit.sh", "logs"}
    info = json.loads((run_dir / "launch.json").read_text())
    assert info["run_id"] == run_id and info["backend"] == "local" and info["cluster"] == "local"
    assert len(info["recipe_hash"]) == 16 and info["job_ids"]
    assert "git_commit" in info and isinstance(info["git_dirty"], bool)
    assert "max_steps: 4" in (run_dir / "recipe.yaml").read_text()
    assert (run_dir / "checkpoints" / "checkpoint-4" / "COMPLETE").exists()
    assert run_state(launch, run_id) == "completed"
    logs = launch("logs", run_id, check=True)
    assert "step 1/4" in logs.stdout and "done" in logs.stdout


def test_failed_run_exits_nonzero_and_status_shows_the_log(launch: Launch) -> None:
    proc = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "env={SMOKE_FAIL_AT: '2'}",
        "--set", "train.max_steps=5",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    run_id = proc.stdout.splitlines()[0]
    detail = launch("status", run_id, check=True).stdout
    assert "failed" in detail and "failing at step 2" in detail


def test_state_changes_and_cancel_kills_the_process_group(launch: Launch, tmp_path: Path) -> None:
    run_id = _submit(
        launch, "-c", "local", "--set", "train.max_steps=1000", "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"
    )
    wait_for(lambda: run_state(launch, run_id) == "running")
    log = tmp_path / "runs" / run_id / "logs" / "task0.out"
    wait_for(lambda: log.exists() and "step 2/" in log.read_text())
    pids = [int(p) for p in subprocess.run(
        ["pgrep", "-f", "--", f"--run-dir {tmp_path / 'runs' / run_id}"], capture_output=True, text=True
    ).stdout.split()]  # fmt: skip
    assert pids, "no job processes found"
    out = launch("cancel", run_id, check=True).stdout
    assert "cancelled" in out
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert run_state(launch, run_id) == "cancelled"
    table = launch("status", check=True).stdout
    assert run_id[:20] in table and "cancelled" in table


def test_gpus_are_queued_not_oversubscribed(launch: Launch, tmp_path: Path) -> None:
    profile = tmp_path / "twogpu.yaml"
    profile.write_text(FAKE_GPUS)
    args = ["-c", str(profile), "--set", "resources.gpus_per_node=2", "--set", "train.max_steps=60",
            "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]  # fmt: skip
    first = _submit(launch, *args)
    second = _submit(launch, *args)
    wait_for(lambda: run_state(launch, first) == "running")
    if run_state(launch, first) == "running":
        # Under load the first run (60 short steps) may end between two status calls; the recorded
        # spans below are the proof that the two never held the GPUs at once.
        second_state = run_state(launch, second)
        assert second_state == "pending" or run_state(launch, first) != "running"
        if second_state == "pending":
            detail = launch("status", second, check=True).stdout
            assert "waiting for 2 free GPU(s)" in detail or run_state(launch, second) != "pending"
    wait_for(lambda: run_state(launch, second) == "completed", timeout=90)
    assert run_state(launch, first) == "completed"
    spans = []
    for run_id in (first, second):
        run_dir = tmp_path / "runs" / run_id
        assert "CUDA_VISIBLE_DEVICES=0,1" in (run_dir / "logs" / "task0.out").read_text()
        state = json.loads((run_dir / ".local_state.json").read_text())
        spans.append((state["started"], state["ended"]))
    assert spans[0][1] <= spans[1][0], f"both runs held GPUs 0,1 at once: {spans}"
    one = _submit(launch, *args[:2], "--set", "resources.gpus_per_node=1", "--set", "train.max_steps=2")
    wait_for(lambda: run_state(launch, one) == "completed")
    assert "CUDA_VISIBLE_DEVICES=0\n" in (tmp_path / "runs" / one / "logs" / "task0.out").read_text()


def test_cancel_while_queued(launch: Launch, tmp_path: Path) -> None:
    profile = tmp_path / "twogpu.yaml"
    profile.write_text(FAKE_GPUS)
    args = ["-c", str(profile), "--set", "resources.gpus_per_node=2", "--set", "train.max_steps=300",
            "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]  # fmt: skip
    first, second = _submit(launch, *args), _submit(launch, *args)
    wait_for(lambda: run_state(launch, first) == "running")
    launch("cancel", second, check=True)
    assert run_state(launch, second) == "cancelled"
    assert run_state(launch, first) == "running"
    launch("cancel", first, check=True)
    assert not (tmp_path / "runs" / second / "logs" / "task0.out").exists()


def test_job_outlives_the_cli(launch: Launch, tmp_path: Path) -> None:
    run_id = _submit(launch, "-c", "local", "--set", "train.max_steps=10", "--set",
                     "env={SMOKE_STEP_SECONDS: '0.1'}")  # fmt: skip
    # the CLI process has exited; the job keeps going and finishes on its own
    wait_for(lambda: run_state(launch, run_id) == "completed", timeout=60)


def test_time_limit_ends_the_run_as_timeout(launch: Launch) -> None:
    run_id = _submit(launch, "-c", "local", "--set", "train.max_steps=1000", "--set", "resources.time=00:02")
    wait_for(lambda: run_state(launch, run_id) == "timeout", timeout=30)
