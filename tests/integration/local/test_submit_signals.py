"""SIGTERM while `launch sweep` submits (issue 26 item 6): 279 of a 400-point sweep stayed
`submitting` for good. The signal now takes the clean-up path of an error: every point is either
registered with the supervisor that was started for it, or gone without a trace."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cli import Launch

POINTS = 24
PROFILE = f"""\
# {POINTS} pretend GPUs, one per point: every point runs at once, each with its own supervisor (an
# array that does not fit gets one runner instead: tests/integration/local/test_local_array.py)
name: manygpu
backend: local
gpu: {{type: test, memory_gb: 1, per_node: {POINTS}, bf16: true}}
limits: {{max_nodes: 1}}
local: {{gpu_ids: {list(range(POINTS))}}}
"""


def _supervised_dirs() -> set[str]:
    """Run directories some live local supervisor was started for."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
            if "launcher.backends.local" in words:
                found.add(words[words.index("--run-dir") + 1])
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_sigterm_during_a_sweep_submit_leaves_no_submitting_row(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    seeds = ",".join(str(i) for i in range(POINTS))
    slow = ["--set", "train.max_steps=300", "--set", "env={SMOKE_STEP_SECONDS: '1'}",
            "--set", "resources.gpus_per_node=1"]  # fmt: skip
    (tmp_path / "manygpu.yaml").write_text(PROFILE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "sweep", "tiny_smoke", "-c", str(tmp_path / "manygpu.yaml"),
         "--grid", f"train.seed={seeds}", "--max-parallel", str(POINTS), *slow],
        env=launch_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = tmp_path / "runs"
    try:
        deadline = time.monotonic() + 60
        while len(list(runs.glob("tiny_smoke-*/logs/supervisor.log"))) < POINTS // 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sweep started no supervisor"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "Traceback" not in err, err
        time.sleep(1)  # supervisors started last have written their command lines
        with sqlite3.connect(Path(launch_env["LAUNCH_HOME"]) / "registry.db") as db:
            rows = dict(db.execute("SELECT run_id, state FROM runs").fetchall())
        assert "submitting" not in rows.values(), rows
        assert 0 < len(rows) < POINTS  # the points whose supervisor started are kept, the rest gone
        dirs = {str(p) for p in runs.glob("tiny_smoke-*") if p.is_dir()}
        assert {str(runs / run_id) for run_id in rows} == dirs  # no row without its directory, or back
        supervised = {d for d in _supervised_dirs() if d.startswith(str(runs))}
        assert supervised <= dirs, supervised - dirs  # no supervisor on a forgotten run
        for run_id in rows:
            info = json.loads((runs / run_id / "launch.json").read_text())
            assert info["job_ids"], run_id  # every registered point has its supervisor recorded
    finally:
        proc.kill()
        for run_dir in runs.glob("tiny_smoke-*"):
            launch("cancel", run_dir.name)
        for pid_dir in _supervised_dirs():
            if pid_dir.startswith(str(runs)):
                subprocess.run(["pkill", "-f", f"--run-dir {pid_dir}"], check=False)
