"""What the sweep tests share on every backend: the grid of tiny_smoke points, submitting a sweep and
reading its points back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.support.cli import Launch

FAST = "env={SMOKE_STEP_SECONDS: '0.05'}"

GRID = ["--grid", "train.lr=1e-5,2e-5", "--grid", "train.max_steps=2,3"]

POINTS = [
    {"train.lr": 1e-5, "train.max_steps": 2},
    {"train.lr": 1e-5, "train.max_steps": 3},
    {"train.lr": 2e-5, "train.max_steps": 2},
    {"train.lr": 2e-5, "train.max_steps": 3},
]


def registry_rows(tmp_path: Path, table: str = "runs") -> list[tuple]:
    """The rows of a registry table in the test's $LAUNCH_HOME (none before the registry exists)."""
    db = tmp_path / "home" / "registry.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()


def submit_sweep(
    launch: Launch, *args: str, cluster: str = "local", timeout: float = 120
) -> tuple[str, list[str]]:
    """`launch sweep tiny_smoke ARGS...`: the sweep id and its points' run ids."""
    proc = launch("sweep", "tiny_smoke", "--cluster", cluster, *args, check=True, timeout=timeout)
    sweep_id = proc.stdout.split()[0]
    runs = [line.split()[0] for line in proc.stderr.splitlines() if line.startswith("  tiny_smoke-")]
    return sweep_id, runs


def launch_info(tmp_path: Path, run_id: str) -> dict:
    """The run's launch.json."""
    return json.loads((tmp_path / "runs" / run_id / "launch.json").read_text())


def sweep_states(launch: Launch, sweep_id: str) -> dict[str, str]:
    """Each point's state, from the table `launch status SWEEP` prints."""
    out = launch("status", sweep_id, check=True).stdout
    return {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.splitlines()
        if "│ tiny_smoke-" in line
    }
