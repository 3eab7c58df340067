"""GPU-hours in the CLI: `launch plan --json` states them, a sweep's dry run per point and in
total, and a profile's limits.max_gpu_hours refuses a submission above it in one line, before
anything is created (the scheduler is never asked, so no Slurm is needed here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cli import Launch

ROOT = Path(__file__).resolve().parents[3]


def budget_profile(where: Path, hours: float) -> Path:
    """dev-slurm with limits.max_gpu_hours, as a file outside $LAUNCH_HOME."""
    text = (ROOT / "cluster" / "dev-slurm.yaml").read_text().replace("name: dev-slurm", "name: budget-slurm")
    text = text.replace('max_time: "24:00:00"}', f'max_time: "24:00:00", max_gpu_hours: {hours}}}')
    assert f"max_gpu_hours: {hours}" in text
    path = where / "budget-slurm.yaml"
    path.write_text(text)
    return path


def test_plan_json_states_gpu_hours(launch: Launch) -> None:
    proc = launch("plan", "ds7b_fft", "--cluster", "a800", "--json", check=True)
    plan = json.loads(proc.stdout)
    assert plan["gpu_hours"] == pytest.approx(plan["time_per_epoch_s"] * 3 * 8 / 3600, abs=1e-3)
    assert plan["gpu_hours_max"] == 576.0
    text = launch("plan", "ds7b_fft", "--cluster", "a800", check=True).stdout
    assert "GPU-hours: ~" in text and "3 epochs x" in text


def test_over_budget_is_refused_and_nothing_created(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """tiny_smoke with 2 GPUs may hold 2 x 10 min = 0.33 GPU-hours: one point fits 0.5, two do not."""
    profile = str(budget_profile(tmp_path, 0.5))
    two_gpus = ["--set", "resources.gpus_per_node=2"]
    proc = launch("sweep", "tiny_smoke", "--cluster", profile, "--grid", "train.seed=1,2", *two_gpus)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "limits.max_gpu_hours" in lines[0]
        and "at most 0.67 GPU-hours for 2 runs" in lines[0]
    )
    assert "--force" in lines[0] and "Traceback" not in proc.stderr
    proc = launch("recipe", "tiny_smoke", "--cluster", profile, *two_gpus, "--set", "resources.time=02:00:00")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "at most 4.0 GPU-hours" in proc.stderr
    assert not Path(launch_env["LAUNCH_HOME"]).exists() and not Path(launch_env["LAUNCH_RUNS"]).exists()


def test_sweep_dry_run_states_each_point_and_the_total(launch: Launch, tmp_path: Path) -> None:
    profile = str(budget_profile(tmp_path, 0.5))
    proc = launch(
        "sweep", "tiny_smoke", "--cluster", profile, "--grid", "train.seed=1,2,3",
        "--set", "resources.gpus_per_node=2", "--dry-run", check=True,
    )  # fmt: skip
    assert proc.stdout.count("at most 0.33") == 3
    assert "# GPU-hours: at most 1.0 planned (resources.time x GPUs); limits.max_gpu_hours 0.5" in proc.stdout
    assert "refused without --force" in proc.stdout
    plan = launch(
        "sweep", "ds7b_fft", "--cluster", "a800", "--grid", "train.epochs=1,2", "--dry-run", check=True
    )
    hours = [float(h) for h in re.findall(r"│ ~([\d.]+)", plan.stdout)]
    assert len(hours) == 2 and hours[1] == pytest.approx(2 * hours[0], abs=0.1)
