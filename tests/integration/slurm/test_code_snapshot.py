"""Code snapshots on the dev Slurm cluster, through `launch`: a job held pending while the checkout
is edited runs the code it was submitted with, a job submitted after the edit runs the edit, a
requeue (USR2) resumes on the same snapshot, and 100 sweep points share one snapshot.

The "checkout" is a copy of launcher/ and jobs/ under tmp/code, first on `launch`'s PYTHONPATH
(tests.support.code); its smoke job prints the file it runs from. Jobs are held at submit with a
profile whose `slurm.extra` adds `--hold`, so none starts before the edit.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Launch, require_slurm, run_state, wait_for
from tests.support.code import MARKER, checkout_env, copy_checkout, copy_launcher, edit_checkout

pytestmark = pytest.mark.slurm

HELD = (Path(__file__).resolve().parents[3] / "cluster" / "dev-slurm.yaml").read_text().replace(
    "name: dev-slurm", "name: dev-slurm-held"
) + "  extra: {hold: true}\n"
FAST = "env={SMOKE_STEP_SECONDS: '0.25'}"


@pytest.fixture
def world(launch_env: dict[str, str], tmp_path: Path) -> tuple[Launch, Path, Path]:
    """`launch` importing the copy at tmp/code, the copy, and the held profile."""
    checkout = copy_checkout(tmp_path / "code")
    env = checkout_env(launch_env, checkout)

    run = copy_launcher(env, tmp_path, 180)

    held = tmp_path / "dev-slurm-held.yaml"
    held.write_text(HELD)
    return run, checkout, held


def _slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=True).stdout


def _info(tmp_path: Path, run_id: str) -> dict[str, Any]:
    data = json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())
    assert isinstance(data, dict)
    return data


def _log(tmp_path: Path, run_id: str) -> str:
    job_id = _info(tmp_path, run_id)["job_ids"][0]
    path = tmp_path / "runs" / run_id / "logs" / f"{job_id}.out"
    return path.read_text() if path.exists() else ""


def test_held_job_runs_its_snapshot_a_later_one_the_edit_and_a_requeue_the_same(
    world: tuple[Launch, Path, Path], tmp_path: Path
) -> None:
    require_slurm()
    launch, checkout, held = world
    args = ["--set", "train.max_steps=24", "--set", "train.save_steps=100", "--set", FAST]
    first = launch("recipe", "tiny_smoke", "-c", str(held), *args, check=True).stdout.split()[0]
    job_id = _info(tmp_path, first)["job_ids"][0]
    assert "JobHeldUser" in _slurm("squeue", "-h", "-j", job_id, "-o", "%r")

    edit_checkout(checkout)  # while the job is held
    later = launch(
        "recipe", "tiny_smoke", "-c", "dev-slurm", "--set", "train.max_steps=2", "-f", check=True
    ).stdout.split()[0]
    snap, edited = _info(tmp_path, first)["code"], _info(tmp_path, later)["code"]
    snapshots = tmp_path / "runs" / ".snapshots"
    assert MARKER in _log(tmp_path, later) and edited["snapshot"] != snap["snapshot"]
    assert f"job file {snapshots / edited['snapshot']}/jobs/smoke/job.py" in _log(tmp_path, later)

    _slurm("scontrol", "release", job_id)
    wait_for(lambda: "step 4/24" in _log(tmp_path, first), timeout=60)
    _slurm("scancel", "--batch", "--signal=USR2", job_id)  # as Slurm warns before preemption
    wait_for(lambda: "restart 1" in _log(tmp_path, first), timeout=90, every=0.5)
    wait_for(lambda: run_state(launch, first) == "completed", timeout=120, every=1)

    log = _log(tmp_path, first)
    assert MARKER not in log and "resuming from step 0" in log and re.search(r"resuming from step [1-9]", log)
    files = re.findall(r"^job file (\S+)$", log, re.M)
    assert files == [f"{snapshots / snap['snapshot']}/jobs/smoke/job.py"] * 2, (
        log
    )  # both starts, one snapshot
    assert _info(tmp_path, first)["code"] == snap  # a requeue reran the same submit.sh
    assert f"export LAUNCH_CODE={snap['snapshot']}\n" in (tmp_path / "runs" / first / "submit.sh").read_text()
    assert "restarts" in launch("status", first, check=True).stdout


def test_a_hundred_sweep_points_share_one_snapshot(world: tuple[Launch, Path, Path], tmp_path: Path) -> None:
    require_slurm()
    launch, _, held = world
    seeds = ",".join(str(i) for i in range(100))
    launch("sweep", "tiny_smoke", "-c", str(held), "--grid", f"train.seed={seeds}", check=True, timeout=300)
    runs = [p.parent.name for p in (tmp_path / "runs").glob("tiny_smoke-*/launch.json")]
    array = _info(tmp_path, runs[0])["job_ids"][0].split("_")[0]
    try:
        assert len(runs) == 100
        ids = {_info(tmp_path, run_id)["code"]["snapshot"] for run_id in runs}
        assert len(ids) == 1
        snapshots = tmp_path / "runs" / ".snapshots"
        assert sorted(p.name for p in snapshots.iterdir()) == sorted([*ids, "objects"])
        listing = launch("snapshots", check=True).stdout
        assert re.search(rf"^│ {ids.pop()} .*│\s+100 │$", listing, re.M), listing
    finally:
        _slurm("scancel", array)  # the points never ran (held): the array goes at once
