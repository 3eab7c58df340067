"""`launch logs` on real local runs (tiny_smoke and tiny_ner): labelled stdout/stderr, --merged by
time, library noise left out of the view only, and Ctrl-C while following."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import Launch, cli_runner, isolated_env
from tests.support.logs import EXPECTED_MERGED, SMOKE_BOTH


def test_labels_and_merged_on_a_local_run(launch: Launch, tmp_path: Path) -> None:
    run_id = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", *SMOKE_BOTH, check=True
    ).stdout.split()[0]
    logs = tmp_path / "runs" / run_id / "logs"
    assert (logs / "task0.out").read_text().startswith("smoke job tiny_smoke")  # the file as written
    assert (logs / "task0.times").exists()
    proc = launch("logs", run_id, check=True)
    assert "out| step 1/3\n" in proc.stdout and "err|" not in proc.stdout
    assert proc.stderr.splitlines() == [f"err| stderr after step {i}" for i in (1, 2, 3)]
    assert "\033[" not in proc.stdout + proc.stderr  # piped: plain text
    merged = launch("logs", run_id, "--merged", check=True)
    assert merged.stdout.splitlines() == EXPECTED_MERGED and merged.stderr == ""


def test_merged_follow_shows_the_backlog_then_new_lines(launch: Launch, launch_env: dict[str, str]) -> None:
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *SMOKE_BOTH, check=True).stdout.split()[0]
    proc = launch("logs", run_id, "--merged", "-f", check=True, timeout=60)
    assert proc.stdout.splitlines() == EXPECTED_MERGED


@pytest.fixture(scope="module")
def tiny_ner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Launch, Path]:
    """One real tiny_ner training run on the local backend (W&B offline): its real library noise."""
    root = tmp_path_factory.mktemp("logs-tiny-ner")
    env = {**isolated_env(root), "WANDB_MODE": "offline"}
    launch = cli_runner(env)
    proc = launch(
        "recipe", "tiny_ner", "-c", "local", "--follow", "--set", "data.max_train_samples=80",
        "--set", "train.max_steps=4", "--set", "train.save_steps=4", "--set", "train.logging_steps=2",
        "--set", "tracking.wandb.mode=offline",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return launch, root / "runs" / proc.stdout.split()[0]


@pytest.mark.slow
def test_real_training_log_noise_is_left_out_of_the_view_only(tiny_ner: tuple[Launch, Path]) -> None:
    launch, run_dir = tiny_ner
    err_file = (run_dir / "logs" / "task0.err").read_text()
    assert "FutureWarning" in err_file and "wandb: Tracking run with wandb version" in err_file
    shown = launch("logs", run_dir.name)
    assert shown.returncode == 0, shown.stderr
    assert "FutureWarning" not in shown.stderr and "warnings.warn(" not in shown.stderr
    assert "Tracking run with wandb version" not in shown.stderr and "Run history:" not in shown.stderr
    assert "err| wandb: Run data is saved locally in" in shown.stderr
    assert "out| data: 80 samples" in shown.stdout
    raw = launch("logs", run_dir.name, "--raw")
    assert "err| " + err_file.splitlines()[0] in raw.stderr.splitlines()
    assert len(raw.stderr.splitlines()) == len(err_file.splitlines())
    assert (run_dir / "logs" / "task0.err").read_text() == err_file  # the file never changes


def _interrupt(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.CompletedProcess:
    follower = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", *cmd], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "step 2/" in log.read_text()):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    return subprocess.CompletedProcess(cmd, follower.returncode, out, err)


def _state(launch: Launch, run_id: str) -> str:
    detail = launch("status", run_id, check=True).stdout
    return "running" if "running" in detail else detail


def test_ctrl_c_while_following_leaves_the_run_running(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    slow = ["--set", "train.max_steps=200", "--set", "env={SMOKE_STEP_SECONDS: '0.2'}"]
    run_id = launch("recipe", "tiny_smoke", "-c", "local", *slow, check=True).stdout.split()[0]
    log = tmp_path / "runs" / run_id / "logs" / "task0.out"
    try:
        proc = _interrupt(["logs", run_id, "-f"], launch_env, tmp_path, log)
        assert proc.returncode == 130, proc.stderr
        assert f"{run_id} goes on" in proc.stderr
        assert f"launch logs {run_id} -f" in proc.stderr and f"launch cancel {run_id}" in proc.stderr
        assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
        assert _state(launch, run_id) == "running"
    finally:
        launch("cancel", run_id, check=True)


@pytest.mark.parametrize("then", [[], ["--then", "reeval"]], ids=["plain", "then"])
def test_ctrl_c_during_launch_recipe_follow(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path, then: list[str]
) -> None:
    """With --then too: the first Ctrl-C stops following at once (it used to go on to the chain)."""
    slow = ["--set", "train.max_steps=200", "--set", "env={SMOKE_STEP_SECONDS: '0.2'}", *then]
    follower = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "-c", "local", "--follow", *slow],
        env=launch_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run_id = ""
    try:
        assert follower.stdout is not None
        run_id = follower.stdout.readline().strip()
        log = tmp_path / "runs" / run_id / "logs" / "task0.out"
        deadline = time.monotonic() + 60
        while not (log.exists() and "step 2/" in log.read_text()):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
        assert follower.returncode == 130, err
        assert f"launch logs {run_id} -f" in err and f"launch cancel {run_id}" in err
        assert err.count("interrupted: stopped following") == 1, err
        assert "Waiting for the chain" not in err and "chain:" not in err, err
        assert _state(launch, run_id) == "running"
    finally:
        follower.kill()
        if run_id:
            launch("cancel", run_id)
