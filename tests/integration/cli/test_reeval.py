"""`launch reeval` refuses bad targets in one line."""

from __future__ import annotations


def test_bad_targets_are_one_line_errors(launch) -> None:
    for args, needle in (
        (["reeval", "nope-run", "--cluster", "local"], "unknown run"),
        (["reeval", "/tmp", "--cluster", "local"], "not a run directory"),
    ):
        proc = launch(*args)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
