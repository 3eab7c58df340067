"""The registry under concurrency: 20 `launch` processes at once lose no row."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.cli import wait_for


def test_twenty_concurrent_launches_lose_no_row(launch_env: dict[str, str], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "-c", "local",
           "--set", "train.max_steps=1", "--set", "env={SMOKE_STEP_SECONDS: '0'}"]  # fmt: skip
    pipe = subprocess.PIPE
    procs = [
        subprocess.Popen(cmd, env=launch_env, cwd=tmp_path, stdout=pipe, stderr=pipe, text=True)
        for _ in range(20)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs if o[1]]
    run_ids = {out.splitlines()[0] for out, _ in outputs}
    assert len(run_ids) == 20
    db = sqlite3.connect(Path(launch_env["LAUNCH_HOME"]) / "registry.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = {r[0] for r in db.execute("SELECT run_id FROM runs")}
    assert rows == run_ids
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 20

    def all_done() -> bool:
        status = subprocess.run([sys.executable, "-m", "launcher.cli", "status"], env=launch_env,
                                capture_output=True, text=True)  # fmt: skip
        return status.stdout.count("completed") == 20

    wait_for(all_done, timeout=120, every=1)
