"""`launch logs` says why it has nothing to show (issue 26, item 13): a task the run does not have is
bad input naming --task and the valid range (exit 2); a run whose directory was deleted is one line
saying so (exit 1). Both printed nothing and exited 0 before."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.cli import Launch


def _one_task_run(launch: Launch, tmp_path: Path) -> tuple[str, Path]:
    run_id = launch("recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "train.max_steps=2",
                    check=True).stdout.split()[0]  # fmt: skip
    return run_id, tmp_path / "runs" / run_id


def test_a_task_the_run_does_not_have_is_refused(launch: Launch, tmp_path: Path) -> None:
    run_id, _ = _one_task_run(launch, tmp_path)
    for task, extra in (("5", []), ("1", ["--follow"]), ("-1", ["--merged"])):
        proc = launch("logs", run_id, "--task", task, *extra)
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--task {task}" in lines[0] and "valid: 0" in lines[0], lines
    shown = launch("logs", run_id, "--task", "0", check=True)  # the task it has still shows
    assert "out| done" in shown.stdout


def test_a_deleted_run_directory_is_said(launch: Launch, tmp_path: Path) -> None:
    run_id, run_dir = _one_task_run(launch, tmp_path)
    shutil.rmtree(run_dir)
    for extra in ([], ["--follow"], ["--merged"], ["--task", "0"]):
        proc = launch("logs", run_id, *extra, timeout=30)
        assert proc.returncode == 1 and proc.stdout == "", proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(run_dir) in lines[0] and "is gone" in lines[0], lines
