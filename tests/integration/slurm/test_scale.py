"""Issue 24, items 2 and 3, on the dev Slurm cluster (MaxArraySize 1001): a 1,200-point sweep and a
2,500-checkpoint reeval split into arrays that fit (held, then cancelled: nothing runs), a submission
over MaxSubmitJobs (a QOS made for the test) or refused by Slurm leaves nothing behind, and ten
`launch status` loops share one squeue per interval (a logging `squeue` first on PATH that execs the
real one)."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import Launch, require_slurm
from tests.support.sweeps import launch_info, registry_rows

pytestmark = pytest.mark.slurm

HELD = "{partition: gpu, gres_type: a800, extra: {hold: true}}"


def _profile(tmp_path: Path, name: str, slurm: str = HELD) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nbackend: slurm\ngpu: {{type: a800, memory_gb: 80, per_node: 8, bf16: true}}\n"
        f"node: {{cpus: 16, mem_gb: 16}}\nslurm: {slurm}\n"
    )
    return path


def _arrays(text: str) -> list[str]:
    return re.findall(r"^#SBATCH --array=(\S+)$", text, re.M)


def _queued(array_ids: list[str]) -> list[str]:
    out = subprocess.run(["squeue", "-h", "--me", "-o", "%F"], capture_output=True, text=True, timeout=30)
    return sorted(set(out.stdout.split()) & set(array_ids))


def _nothing_left(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert not list(runs.glob("*/launch.json")) and not (runs / ".slurm-arrays").exists()
    assert registry_rows(tmp_path) == [] and registry_rows(tmp_path, "sweeps") == []


def test_a_1200_point_sweep_is_two_chained_arrays_one_status_line_one_cancel(
    launch: Launch, tmp_path: Path
) -> None:
    require_slurm()
    grid = ["--grid", "train.max_steps=" + ",".join(str(i) for i in range(1, 1201))]
    dry = launch("sweep", "tiny_smoke", "--cluster", "dev-slurm", *grid, "--dry-run", check=True)
    assert _arrays(dry.stdout) == ["0-1000%4", "0-198%4"]
    assert "# 1200 runs in 2 arrays (one at a time" in dry.stdout and "MaxArraySize 1001" in dry.stdout
    assert "#SBATCH --dependency='afterany:<array 1>'" in dry.stdout
    assert not (tmp_path / "runs").exists()

    started = time.monotonic()
    proc = launch("sweep", "tiny_smoke", "--cluster", str(_profile(tmp_path, "held")), *grid, check=True)
    took = time.monotonic() - started
    sweep_id = proc.stdout.split()[0]
    points = [line.split()[0] for line in proc.stderr.splitlines() if line.startswith("  tiny_smoke-")]
    assert len(points) == 1200 and "(1200 jobs)" in proc.stderr
    scripts = {(tmp_path / "runs" / points[i] / "submit.sh").read_text() for i in (0, 1000, 1001, 1199)}
    assert sorted(a for s in scripts for a in _arrays(s)) == ["0-1000%4", "0-198%4"]
    first, second = (re.search(r"^(\d+)_", proc.stderr.split("job(s) ")[1]).group(1),
                     re.search(r"(\d+)_198 \(1200", proc.stderr).group(1))  # fmt: skip
    assert (
        f"#SBATCH --dependency=afterany:{first}"
        in (tmp_path / "runs" / points[1001] / "submit.sh").read_text()
    )
    try:
        assert _queued([first, second]) == sorted([first, second])
        status = launch("status", check=True).stdout
        assert f"{sweep_id}: 1200 points: 1200 pending" in status, status
        cancelled = time.monotonic()
        out = launch("cancel", sweep_id, check=True).stdout
        cancel_took = time.monotonic() - cancelled
        assert out.count(": cancelled") == 1200 and _queued([first, second]) == []
    finally:
        subprocess.run(["scancel", first, second], capture_output=True, timeout=60)
    sys.stderr.write(f"1200-point sweep: submitted in {took:.1f} s, cancelled in {cancel_took:.1f} s\n")


def test_a_2500_checkpoint_reeval_is_three_arrays_and_one_cancel(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    run_dir = tmp_path / "runs" / "tiny_ner-20261201-1200-ab12"
    for step in range(1, 2501):
        (run_dir / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir / "checkpoints" / f"checkpoint-{step}" / "COMPLETE").write_text("")
    (run_dir / "recipe.yaml").write_text(launch("show", "tiny_ner", check=True).stdout)
    held = str(_profile(tmp_path, "held"))
    dry = launch("reeval", str(run_dir), "--cluster", held, "--dry-run", check=True)
    assert _arrays(dry.stdout) == ["0-1000%8", "0-1000%8", "0-497%8"]
    assert dry.stdout.count("#SBATCH --dependency='afterany:<array") == 2
    started = time.monotonic()
    proc = launch("reeval", str(run_dir), "--cluster", held, check=True, timeout=300)
    took = time.monotonic() - started
    evals = proc.stdout.split()
    assert len(evals) == 2500 and "(2500 jobs)" in proc.stderr
    arrays = sorted({launch_info(tmp_path, e)["job_ids"][0].split("_")[0] for e in evals[::500] + evals[-1:]})
    try:
        assert len(arrays) == 3 and _queued(arrays) == arrays
        assert "tiny_ner-20261201-1200-ab12: 2500 runs: 2500 pending" in launch("status", check=True).stdout
        out = launch("cancel", run_dir.name, check=True).stdout
        assert out.count(": cancelled") == 2500 and _queued(arrays) == []
    finally:
        subprocess.run(["scancel", *arrays], capture_output=True, timeout=60)
    sys.stderr.write(f"2500-checkpoint reeval: submitted in {took:.1f} s\n")


def test_over_max_submit_jobs_is_one_line_and_nothing_is_created(launch: Launch, tmp_path: Path) -> None:
    """MaxSubmitJobsPerUser of a QOS made for this test (and deleted after): no other user's limit moves."""
    require_slurm()
    qos = f"launchtest{os.getpid()}"
    add = ["sacctmgr", "-i", "add", "qos", qos, "MaxSubmitJobsPerUser=5"]
    subprocess.run(add, capture_output=True, text=True, timeout=60, check=True)
    try:
        limited = _profile(
            tmp_path, "limited", f"{{partition: gpu, gres_type: a800, qos: {qos}, extra: {{hold: true}}}}"
        )
        proc = launch(
            "sweep", "tiny_smoke", "--cluster", str(limited), "--grid", "train.max_steps=1,2,3,4,5,6"
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "6 job(s) do not fit under cluster 'limited''s limit of 5" in lines[0]
        assert f"QOS {qos} MaxSubmitJobsPerUser" in lines[0] and "splitting cannot help" in lines[0]
        _nothing_left(tmp_path)
    finally:
        subprocess.run(["sacctmgr", "-i", "delete", "qos", qos], capture_output=True, timeout=60)


def test_a_sweep_slurm_refuses_leaves_no_row_directory_or_link(launch: Launch, tmp_path: Path) -> None:
    require_slurm()
    bad = _profile(
        tmp_path, "bad", "{partition: gpu, gres_type: a800, extra: {hold: true, reservation: nosuchresv}}"
    )
    proc = launch("sweep", "tiny_smoke", "--cluster", str(bad), "--grid", "train.max_steps=1,2,3")
    assert proc.returncode == 2 and "Requested reservation is invalid" in proc.stderr, proc.stderr
    _nothing_left(tmp_path)


def test_ten_status_loops_send_one_squeue_per_interval(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    require_slurm()
    proc = launch("sweep", "tiny_smoke", "--cluster", str(_profile(tmp_path, "held")), "--grid",
                  "train.max_steps=1,2,3", check=True)  # fmt: skip
    sweep_id = proc.stdout.split()[0]
    bin_dir, log = tmp_path / "bin", tmp_path / "squeue.log"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(
        f'#!/bin/bash\necho "$(date +%s.%N)" >> {log}\nexec /usr/bin/squeue "$@"\n'
    )
    (bin_dir / "squeue").chmod(0o755)
    env = {**launch_env, "PATH": f"{bin_dir}:{launch_env['PATH']}"}
    status = f"{sys.executable} -m launcher.cli status >/dev/null || exit 1"
    loop = (
        f"n=0; end=$((SECONDS + 10)); while [ $SECONDS -lt $end ]; do {status}; n=$((n + 1)); done; echo $n"
    )
    try:
        started = time.monotonic()
        loops = [
            subprocess.Popen(["bash", "-c", loop], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
            for _ in range(10)
        ]
        counts = [int(p.communicate(timeout=120)[0]) for p in loops]
        elapsed = time.monotonic() - started
        calls = [float(t) for t in log.read_text().split()]
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert sum(counts) >= 10 and len(calls) <= elapsed / 5 + 1, (counts, calls, elapsed)
        assert all(gap > 4.5 for gap in gaps), gaps  # slurm.poll_interval_s: 5 by default
        before = len(calls)
        for _ in range(2):
            subprocess.run([sys.executable, "-m", "launcher.cli", "status", "--fresh"], env=env, cwd=tmp_path,
                           capture_output=True, timeout=60, check=True)  # fmt: skip
        assert len(log.read_text().split()) == before + 2
        sys.stderr.write(
            f"{sum(counts)} `launch status` in {elapsed:.0f} s from 10 loops: {len(calls)} squeue\n"
        )
    finally:
        launch("cancel", sweep_id)
