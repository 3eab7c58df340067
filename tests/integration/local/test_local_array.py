"""Local arrays with more points than may run at once (issue 26 item 11): one runner starts each
point's supervisor as a slot frees, so a queued point has no process; status, cancel and a killed
runner answer for queued points; the dry run of a large sweep states processes and memory."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.local.test_local_backend import FAKE_GPUS
from tests.support.cli import Launch, run_state, wait_for
from tests.support.sweeps import submit_sweep, sweep_states

SLOW = ["--set", "train.max_steps=300", "--set", "env={SMOKE_STEP_SECONDS: '1'}"]


def _cap(wanted: int) -> int:
    """Points without GPUs at once here: no more than this machine's cores (tiny_smoke: 1 CPU)."""
    return min(wanted, len(os.sched_getaffinity(0)))


def _processes(tmp_path: Path) -> tuple[list[int], list[int]]:
    """(supervisors, runners): PIDs of the live local processes of this test's runs and $LAUNCH_HOME.

    Each leads its own session; a child between fork and exec still shows its parent's command
    line (a job about to start, a supervisor the runner is starting) and is not counted."""
    supervisors, runners = [], {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        pid = int(cmdline.parent.name)
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
            stat = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        named, ppid, session = " ".join(words), int(stat[1]), int(stat[3])
        if "launcher.backends.local" in words and str(tmp_path / "runs") in named and session == pid:
            supervisors.append(pid)
        if "launcher.backends.local_array" in words and str(tmp_path / "home") in named:
            runners[pid] = ppid
    return supervisors, [pid for pid, ppid in runners.items() if ppid not in runners]


def _detail(launch: Launch, run_id: str) -> dict[str, str]:
    """The `key  value` lines of `launch status RUN`."""
    out = launch("status", run_id, check=True).stdout
    return {k: v.strip() for k, _, v in (line.partition(" ") for line in out.splitlines()) if v}


def test_twelve_points_two_at_once_take_two_supervisors_and_one_runner(
    launch: Launch, tmp_path: Path
) -> None:
    grid = "train.seed=" + ",".join(str(i) for i in range(12))
    fast = ["--set", "train.max_steps=3", "--set", "env={SMOKE_STEP_SECONDS: '0.1'}"]
    sweep_id, runs = submit_sweep(launch, "--grid", grid, *fast, "--max-parallel", "2")
    assert len(runs) == 12
    detail = _detail(launch, runs[-1])
    assert (
        detail["state"] == "pending" and detail["why"] == f"array limit: {_cap(2)} of {_cap(2)} runs at once"
    )
    most_supervisors = most_runners = 0
    deadline = time.monotonic() + 150
    while set(sweep_states(launch, sweep_id).values()) != {"completed"}:
        assert time.monotonic() < deadline, sweep_states(launch, sweep_id)
        for _ in range(20):
            supervisors, runners = _processes(tmp_path)
            most_supervisors = max(most_supervisors, len(supervisors))
            most_runners = max(most_runners, len(runners))
            time.sleep(0.05)
    assert most_supervisors <= _cap(2) and most_runners == 1, (most_supervisors, most_runners)
    wait_for(lambda: _processes(tmp_path) == ([], []), timeout=10)  # the runner ended with the array
    assert not list((tmp_path / "home" / "local" / "arrays").iterdir())  # its manifest (and log) gone
    spans = [json.loads((tmp_path / "runs" / r / ".local_state.json").read_text()) for r in runs]
    assert [s["state"] for s in spans] == ["completed"] * 12
    for s in spans:  # never more than the cap at once
        assert sum(o["started"] <= s["started"] < o["ended"] for o in spans) <= _cap(2)
    assert "step 3/3" in launch("logs", runs[-1], check=True).stdout


def test_a_queued_point_cancelled_never_starts_and_the_others_complete(
    launch: Launch, tmp_path: Path
) -> None:
    args = ["--grid", "train.seed=1,2,3,4", "--set", "train.max_steps=8",
            "--set", "env={SMOKE_STEP_SECONDS: '0.25'}", "--max-parallel", "1"]  # fmt: skip
    sweep_id, runs = submit_sweep(launch, *args)
    assert run_state(launch, runs[2]) == "pending"
    out = launch("cancel", runs[2], check=True).stdout
    assert out.strip() == f"{runs[2]}: cancelled"
    wait_for(lambda: "pending" not in sweep_states(launch, sweep_id).values(), timeout=120, every=1)
    wait_for(lambda: "running" not in sweep_states(launch, sweep_id).values(), timeout=60, every=1)
    states = sweep_states(launch, sweep_id)
    assert [states[r] for r in runs] == ["completed", "completed", "cancelled", "completed"]
    cancelled = tmp_path / "runs" / runs[2]
    assert not (cancelled / "logs" / "supervisor.log").exists()  # no supervisor was ever started
    assert not (cancelled / "logs" / "task0.out").exists()
    assert _detail(launch, runs[2])["why"] == "cancelled before it started"
    assert launch("cancel", runs[2], check=True).stdout.strip() == f"{runs[2]}: cancelled"


def test_cancel_the_sweep_mid_way_ends_every_process(launch: Launch, tmp_path: Path) -> None:
    sweep_id, runs = submit_sweep(launch, "--grid", "train.seed=1,2,3,4,5,6", *SLOW, "--max-parallel", "2")
    wait_for(lambda: "running" in sweep_states(launch, sweep_id).values(), timeout=60, every=0.5)
    supervisors, runners = _processes(tmp_path)
    assert len(supervisors) == _cap(2) and len(runners) == 1
    out = launch("cancel", sweep_id, check=True).stdout
    assert sorted(out.splitlines()) == sorted(f"{r}: cancelled" for r in runs)
    wait_for(lambda: _processes(tmp_path) == ([], []), timeout=10)
    jobs = subprocess.run(["pgrep", "-f", str(tmp_path / "runs")], capture_output=True, text=True).stdout
    assert not jobs.split(), jobs  # nor any job process
    states = [json.loads((tmp_path / "runs" / r / ".local_state.json").read_text())["state"] for r in runs]
    assert states == ["cancelled"] * 6
    assert sum((tmp_path / "runs" / r / "logs" / "task0.out").exists() for r in runs) <= 3


def test_a_killed_runner_fails_the_points_it_never_started(launch: Launch, tmp_path: Path) -> None:
    sweep_id, runs = submit_sweep(launch, "--grid", "train.seed=1,2,3,4", *SLOW, "--max-parallel", "1")
    try:
        wait_for(lambda: run_state(launch, runs[0]) == "running", timeout=60, every=0.5)
        _, runners = _processes(tmp_path)
        assert len(runners) == 1
        os.kill(runners[0], signal.SIGKILL)
        wait_for(lambda: _processes(tmp_path)[1] == [], timeout=10)
        states = sweep_states(launch, sweep_id)
        assert [states[r] for r in runs] == ["running", "failed", "failed", "failed"]
        why = _detail(launch, runs[3])["why"]
        assert why == (
            f"never started: its array's runner (process {runners[0]}) ended before starting it (killed?)"
        )
        assert not (tmp_path / "runs" / runs[3] / "logs" / "supervisor.log").exists()
    finally:
        launch("cancel", sweep_id)
    assert sweep_states(launch, sweep_id)[runs[0]] == "cancelled"
    assert _processes(tmp_path) == ([], [])


def test_sigterm_while_submitting_an_array_keeps_every_point_of_the_started_runner(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """A queued point of a runner that was started counts as submitted: found and recorded."""
    points = 200
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "sweep", "tiny_smoke", "-c", "local", "--grid",
         "train.seed=" + ",".join(str(i) for i in range(points)), "--max-parallel", "1", *SLOW],
        env=launch_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runners: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not runners:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no runner was started"
            runners = _processes(tmp_path)[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
        with sqlite3.connect(tmp_path / "home" / "registry.db") as db:
            rows = dict(db.execute("SELECT run_id, state FROM runs").fetchall())
        assert len(rows) == points and "submitting" not in rows.values()
        ids = [json.loads((tmp_path / "runs" / r / "launch.json").read_text())["job_ids"] for r in rows]
        runner = ids[0][0].split("#")[0]
        assert runner.startswith(f"{runners[0]}@")
        assert sorted(ids) == sorted([f"{runner}#{i}"] for i in range(points))
        assert {run_state(launch, r) for r in list(rows)[-3:]} == {"pending"}
    finally:
        proc.kill()
        for pid in runners:
            os.kill(pid, signal.SIGKILL)  # the queued points fail; the one started is cancelled below
        for run_dir in (tmp_path / "runs").glob("tiny_smoke-*/logs/supervisor.log"):
            launch("cancel", run_dir.parent.parent.name)
    assert _processes(tmp_path) == ([], [])


def test_the_dry_run_of_a_thousand_points_states_processes_and_memory(launch: Launch) -> None:
    grid = "train.seed=" + ",".join(str(i) for i in range(1000))
    out = launch("sweep", "tiny_smoke", "-c", "local", "--grid", grid, "--max-parallel", "2", "--dry-run",
                 check=True, timeout=300).stdout  # fmt: skip
    cap = _cap(2)
    assert (
        f"# this machine: at most {cap + 1} processes: {cap} supervisor(s), and one runner that starts "
        f"the other {1000 - cap} runs in order as slots free (a queued run has no process)\n"
    ) in out
    assert (
        f"# memory: about {cap * 35 + 21:,} MB resident at most (35 MB a supervisor, 21 MB the runner" in out
    )
    small = launch("sweep", "tiny_smoke", "-c", "local", "--grid", "train.seed=1,2", "--dry-run", check=True)
    assert "# this machine" not in small.stdout and "# memory" not in small.stdout


def test_points_with_gpus_run_no_more_at_once_than_the_gpus_hold(launch: Launch, tmp_path: Path) -> None:
    """Points beyond what the GPUs hold would only wait, each a supervisor: the runner holds them."""
    profile = tmp_path / "twogpu.yaml"
    profile.write_text(FAKE_GPUS)
    args = ["--grid", "train.seed=1,2,3,4,5", "--set", "resources.gpus_per_node=1", "--max-parallel", "8"]
    out = launch("sweep", "tiny_smoke", "-c", str(profile), *args, "--dry-run", check=True).stdout
    assert "5 point(s) of tiny_smoke on twogpu (local), at most 2 at once" in out
