"""Code snapshots on the local backend, through `launch`: a queued run runs the code it was
submitted with, not the checkout edited meanwhile; `--live-code` runs the checkout and says so; a
run submitted after the edit runs the edit from a new snapshot; `launch snapshots --prune` frees
what no run refers to.

The "checkout" is a copy of launcher/ and jobs/ under tmp/code, first on `launch`'s PYTHONPATH
(tests.support.code); its smoke job prints the file it runs from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Launch, run_state, wait_for
from tests.support.code import MARKER, checkout_env, copy_checkout, copy_launcher, edit_checkout, smoke_job

ONE_GPU = """\
# one pretend GPU (the jobs never touch it): a run that holds it keeps the next ones queued
name: onegpu
backend: local
gpu: {type: test, memory_gb: 1, per_node: 1, bf16: true}
limits: {max_nodes: 1}
local: {gpu_ids: [0]}
"""
QUICK = ["--set", "train.max_steps=2", "--set", "resources.gpus_per_node=1"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return copy_checkout(tmp_path / "code")


@pytest.fixture
def launch_copy(launch_env: dict[str, str], tmp_path: Path, checkout: Path) -> Launch:
    """`launch` as the fixture runs it, importing the launcher and jobs of the copy."""
    env = checkout_env(launch_env, checkout)

    run = copy_launcher(env, tmp_path, 120)

    code = "import launcher, importlib.util as u; print(launcher.__file__, u.find_spec('jobs').origin)"
    where = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert all(path.startswith(f"{checkout}/") for path in where), where  # the copy, not the repository
    return run


def _code(tmp_path: Path, run_id: str) -> dict[str, Any]:
    code = json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())["code"]
    assert isinstance(code, dict)
    return code


def _log(tmp_path: Path, run_id: str) -> str:
    path = tmp_path / "runs" / run_id / "logs" / "task0.out"
    return path.read_text() if path.exists() else ""


def _job_file(log: str) -> str:
    found = re.search(r"^job file (\S+)$", log, re.M)
    assert found, log
    return found.group(1)


def test_a_queued_run_runs_its_snapshot_and_live_code_runs_the_checkout(
    launch_copy: Launch, tmp_path: Path, checkout: Path
) -> None:
    launch = launch_copy
    profile = tmp_path / "onegpu.yaml"
    profile.write_text(ONE_GPU)
    hold = ["--set", "train.max_steps=3000", "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]
    blocker = launch("recipe", "tiny_smoke", "-c", str(profile), *QUICK, *hold, check=True).stdout.split()[0]
    wait_for(lambda: "step 1/" in _log(tmp_path, blocker), timeout=30)
    queued = launch("recipe", "tiny_smoke", "-c", str(profile), *QUICK, check=True).stdout.split()[0]
    live = launch(
        "recipe", "tiny_smoke", "-c", str(profile), *QUICK, "--live-code", check=True
    ).stdout.split()[0]
    assert run_state(launch, queued) == "pending" and run_state(launch, live) == "pending"

    edit_checkout(checkout)  # while both wait for the GPU
    after = launch("recipe", "tiny_smoke", "-c", str(profile), *QUICK, check=True).stdout.split()[0]
    launch("cancel", blocker, check=True)
    for run_id in (queued, live, after):
        wait_for(lambda run_id=run_id: run_state(launch, run_id) == "completed", timeout=90, every=0.5)

    first, edited = _code(tmp_path, queued), _code(tmp_path, after)
    snapshots = tmp_path / "runs" / ".snapshots"
    assert _code(tmp_path, blocker)["snapshot"] == first["snapshot"]  # the same code: one snapshot
    assert MARKER not in _log(tmp_path, queued)
    assert _job_file(_log(tmp_path, queued)) == str(snapshots / first["snapshot"] / "jobs/smoke/job.py")
    assert MARKER in _log(tmp_path, after) and edited["snapshot"] != first["snapshot"]
    assert _job_file(_log(tmp_path, after)) == str(snapshots / edited["snapshot"] / "jobs/smoke/job.py")
    assert MARKER in _log(tmp_path, live) and _job_file(_log(tmp_path, live)) == str(smoke_job(checkout))
    assert sorted(p.name for p in snapshots.iterdir()) == sorted(
        [first["snapshot"], edited["snapshot"], "objects"]
    )

    assert first["packages"] == [str(checkout / "launcher"), str(checkout / "jobs")]
    assert first["workdir"] == str(tmp_path) and first["live"] is False
    code_live = _code(tmp_path, live)
    assert code_live["live"] is True and code_live["snapshot"] is None and code_live["path"] is None
    detail = launch("status", live, check=True).stdout
    assert re.search(
        rf"^code\s+LIVE checkout {re.escape(str(checkout))} \(--live-code: not a snapshot\)", detail, re.M
    )
    detail = launch("status", queued, check=True).stdout
    assert re.search(rf"^code\s+snapshot {first['snapshot']} \(\d+ files, \d+\.\d MB\)", detail, re.M), detail
    shown = launch("show", queued, check=True).stdout
    assert f"# code: snapshot {first['snapshot']} (" in shown
    script = (tmp_path / "runs" / queued / "submit.sh").read_text()
    assert (
        f"\ncd {tmp_path}\n" in script
        and f"export PYTHONPATH={snapshots / first['snapshot']}:{checkout}\n" in script
    )


def test_snapshots_lists_and_prune_frees_only_what_no_run_refers_to(
    launch_copy: Launch, tmp_path: Path, checkout: Path
) -> None:
    launch = launch_copy
    assert "no code snapshots" in launch("snapshots", check=True).stderr
    old = launch(
        "recipe", "tiny_smoke", "-c", "local", "--set", "train.max_steps=1", "-f", check=True
    ).stdout.split()[0]
    before = smoke_job(checkout).stat().st_size
    edit_checkout(checkout)
    new = launch(
        "recipe", "tiny_smoke", "-c", "local", "--set", "train.max_steps=1", "-f", check=True
    ).stdout.split()[0]
    old_id, new_id = _code(tmp_path, old)["snapshot"], _code(tmp_path, new)["snapshot"]
    snapshots = tmp_path / "runs" / ".snapshots"
    objects = len(list((snapshots / "objects").iterdir()))

    listing = launch("snapshots", check=True).stdout
    assert re.search(rf"^│ {old_id} .*│\s+1 │$", listing, re.M) and re.search(
        rf"^│ {new_id} .*│\s+1 │$", listing, re.M
    )
    shutil.rmtree(tmp_path / "runs" / old)  # its run is gone: nothing refers to its snapshot
    assert re.search(rf"^│ {old_id} .*│\s+0 │$", launch("snapshots", check=True).stdout, re.M)
    young = launch("snapshots", "--prune", check=True).stdout
    assert "removed 0 snapshot(s)" in young and "kept 1 unreferenced snapshot(s)" in young and old_id in young
    assert (snapshots / old_id).is_dir()

    hour_ago = time.time() - 3600
    for path in (snapshots / old_id, snapshots / old_id / "SNAPSHOT.json"):
        os.utime(path, (hour_ago, hour_ago))
    dry = launch("snapshots", "--prune", "--dry-run", check=True).stdout
    freed = f"{before / 1e6:.3f} MB"  # the old smoke job.py: every other file is shared with new_id
    assert (
        f"1 stored file(s) no snapshot uses: would free {freed}" in dry
        and "would remove 1 snapshot(s)" in dry
    )
    assert (snapshots / old_id).is_dir()
    done = launch("snapshots", "--prune", check=True).stdout
    assert (
        f"removed 1 snapshot(s) no run refers to and 1 stored file(s) no snapshot uses: freed {freed}" in done
    )
    assert not (snapshots / old_id).exists() and (snapshots / new_id / "jobs" / "smoke" / "job.py").is_file()
    assert len(list((snapshots / "objects").iterdir())) == objects - 1
    assert "removed 0 snapshot(s)" in launch("snapshots", "--prune", check=True).stdout
    assert "--dry-run goes with --prune" in launch("snapshots", "--dry-run").stderr
