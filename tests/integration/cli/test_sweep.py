"""`launch sweep` refusals and dry runs through the CLI: a bad point creates nothing, a zip prints
its points."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Launch
from tests.support.sweeps import GRID, registry_rows


def test_a_bad_point_refuses_the_sweep_and_creates_nothing(launch: Launch, tmp_path: Path) -> None:
    proc = launch(
        "sweep", "tiny_smoke", "-c", "local", "--grid", "train.lr=1e-5,abc", "--grid", "train.max_steps=2,3"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: sweep point 2 (train.lr=abc, train.max_steps=2): --set train.lr: ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert registry_rows(tmp_path) == [] and registry_rows(tmp_path, "sweeps") == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    unknown = launch("sweep", "tiny_smoke", "-c", "local", "--grid", "train.lrr=1,2")
    assert unknown.returncode == 2 and "unknown key 'lrr' (did you mean 'lr'?)" in unknown.stderr
    unequal = launch(
        "sweep", "tiny_smoke", "-c", "local", "--zip", *GRID[:2], "--grid", "train.max_steps=2,3,4"
    )
    assert unequal.returncode == 2
    assert "train.lr has 2, train.max_steps has 3 values" in unequal.stderr


def test_dry_run_of_a_zip_prints_the_points_and_creates_nothing(launch: Launch, tmp_path: Path) -> None:
    proc = launch("sweep", "tiny_smoke", "-c", "local", "--zip", *GRID, "--dry-run", check=True)
    points = [line for line in proc.stdout.splitlines() if "tiny_smoke-" in line and "│" in line]
    assert len(points) == 2
    assert "1e-05" in points[0] and "│ 2 " in points[0] and "2e-05" in points[1] and "│ 3 " in points[1]
    assert "2 point(s) of tiny_smoke on local" in proc.stdout and "-m jobs.smoke --run-dir" in proc.stdout
    assert not (tmp_path / "runs").exists() and not (tmp_path / "home" / "registry.db").exists()
