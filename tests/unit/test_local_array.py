"""The local array's pure parts: the cost a dry run states, and the job ids it hands out."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.backends.local_array import Member, cost_text
from launcher.backends.procs import Proc


def test_small_arrays_state_no_cost() -> None:
    assert cost_text(16, 2) is None and cost_text(16, 16) is None


def test_an_array_with_a_runner_costs_the_supervisors_at_once_and_the_runner() -> None:
    assert cost_text(1000, 2) == (
        "# this machine: at most 3 processes: 2 supervisor(s), and one runner that starts the other 998 "
        "runs in order as slots free (a queued run has no process)\n"
        "# memory: about 91 MB resident at most (35 MB a supervisor, 21 MB the runner, measured with "
        "Python 3.11 on Linux), besides what the jobs use"
    )
    # 2 x 35 + 21 + 20,000 x 0.2 kB (the manifest, 3.9 MB) -> 95
    assert "about 95 MB resident at most" in (cost_text(20_000, 2) or "")


def test_an_array_that_fits_costs_a_supervisor_per_run() -> None:
    assert cost_text(20, 20) == (
        "# this machine: 20 supervisor processes at once (one per run)\n"
        "# memory: about 700 MB resident (35 MB a supervisor, measured with Python 3.11 on Linux), "
        "besides what the jobs use"
    )


def test_array_job_ids_name_the_runner_and_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCH_HOME", str(tmp_path))
    assert Member.parse("123@456#7") == Member(Proc(123, 456), 7)
    member = Member.parse("123@456#7")
    assert member is not None and member.job_id == "123@456#7"
    assert Member.parse("123@456") is None  # a supervisor's id
    assert Member.parse("x#1") is None and Member.parse("123@456#") is None
