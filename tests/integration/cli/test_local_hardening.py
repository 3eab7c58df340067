"""A zero time limit is refused before anything starts."""

from __future__ import annotations

from tests.support.cli import Launch


def test_zero_time_is_refused(launch: Launch) -> None:
    for zero in ("0", "00:00:00", "0-00:00"):
        proc = launch("recipe", "tiny_smoke", "-c", "local", "--dry-run", "--set", f"resources.time={zero}")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "resources.time" in proc.stderr and "unlimited" in proc.stderr
        assert "Traceback" not in proc.stderr
