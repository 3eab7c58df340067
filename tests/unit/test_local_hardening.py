"""The local backend's GPU table is writable by every user, and the error line prefers the job's own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from launcher.backends.local import gpu_table_dir
from launcher.backends.procs import Proc


def test_the_gpu_table_is_writable_by_every_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from launcher.backends.local import _gpu_table

    monkeypatch.setenv("LAUNCH_GPU_TABLE", str(tmp_path / "table"))
    old = os.umask(0o077)
    try:
        with _gpu_table() as table:
            table["holders"]["0"] = {"supervisor": Proc.me().to_json(), "job": None}
    finally:
        os.umask(old)
    directory = gpu_table_dir()
    assert directory == tmp_path / "table"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o777
    assert stat.S_IMODE((directory / "gpus.lock").stat().st_mode) == 0o666
    with _gpu_table() as table:
        assert table["holders"]["0"]["supervisor"]["pid"] == os.getpid()
    monkeypatch.delenv("LAUNCH_GPU_TABLE")
    assert gpu_table_dir() == Path("/tmp/recipe-launcher-gpus")


def test_last_error_line_prefers_the_jobs_own_error(tmp_path: Path) -> None:
    from launcher.views.status import last_error_line

    logs = tmp_path / "logs"
    logs.mkdir()
    err = logs / "7.err"
    assert last_error_line(tmp_path) is None
    err.write_text("Traceback (most recent call last):\n  File x\nValueError: bad lr\nhint: see the docs\n\n")
    assert last_error_line(tmp_path) == "ValueError: bad lr"
    err.write_text("loading\nerror: no such file\nsrun: error: vm: task 0: Exited with exit code 1\n")
    assert last_error_line(tmp_path) == "error: no such file"
    err.write_text("step 3\nfailing at step 3\nslurmstepd: error: *** JOB 7 ON vm CANCELLED ***\n")
    assert last_error_line(tmp_path) == "failing at step 3"
    err.write_text("srun: error: vm: task 0: Exited with exit code 1\n")
    assert last_error_line(tmp_path) == "srun: error: vm: task 0: Exited with exit code 1"
