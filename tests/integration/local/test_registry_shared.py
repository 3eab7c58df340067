"""The registry on a shared home: two processes writing and refreshing at once on the network
filesystem path (rollback journal + lock file) lose no row, and `launch doctor --rebuild-registry`
makes the registry anew from the run directories, atomically."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from launcher.runs.registry import Registry

WRITER = """
import sys
from pathlib import Path
from launcher.runs.registry import Registry

name, count = sys.argv[1], int(sys.argv[2])
registry = Registry()
for i in range(count):
    run_id = f"{name}-{i:04d}"
    registry.add(run_id, "tiny", "local", "local", "train", Path("/nx") / run_id, [str(i)], state="pending")
    if i % 3 == 0:
        registry.set_state(run_id, "running", {0: "running"})
    if i % 10 == 0:
        assert registry.get(run_id) is not None
        registry.all()  # a refresh reads everything while the other process writes
for i in range(0, count, 2):
    registry.set_state(f"{name}-{i:04d}", "completed", {0: "completed"})
registry.close()
"""


def test_two_processes_on_a_network_home_lose_no_row(launch_env: dict[str, str]) -> None:
    env = {**launch_env, "LAUNCH_REGISTRY_FS": "network"}
    count = 250
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(count)], env=env, stderr=subprocess.PIPE, text=True
        )
        for name in ("a", "b")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    path = Path(launch_env["LAUNCH_HOME"]) / "registry.db"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not Path(f"{path}-wal").exists()
    assert (path.parent / "registry.lock").exists()
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2 * count
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2 * count
    done = db.execute("SELECT COUNT(*) FROM runs WHERE state='completed'").fetchone()[0]
    assert done == 2 * len(range(0, count, 2))
    print(f"hammer: {2 * count} rows written, {db.execute('SELECT COUNT(*) FROM runs').fetchone()[0]} found")


def _run_dir(runs: Path, run_id: str, **info: object) -> Path:
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    data = {"run_id": run_id, "recipe": "tiny_ner", "cluster": "dev-slurm", "backend": "slurm",
            "job": "train", "created_at": "2026-12-01T00:00:00+00:00", "job_ids": ["17"], **info}  # fmt: skip
    (run_dir / "launch.json").write_text(json.dumps(data))
    return run_dir


def test_doctor_rebuilds_the_registry_from_the_run_directories(
    launch_env: dict[str, str], tmp_path: Path
) -> None:
    runs, home = Path(launch_env["LAUNCH_RUNS"]), Path(launch_env["LAUNCH_HOME"])
    train = _run_dir(runs, "tiny_ner-20261201-0000-aaaa")
    _run_dir(runs, "tiny_ner_eval-20261201-0001-bbbb", recipe="tiny_ner_eval", job="evaluate",
             parent=train.name, created_at="2026-12-01T00:01:00+00:00")  # fmt: skip
    for i in range(2):
        sweep = "sweep-tiny_ner-x"
        _run_dir(
            runs, f"tiny_ner-20261201-000{i + 2}-cccc", sweep=sweep, parent=sweep, sweep_point={"train.lr": i}
        )
    (runs / "not-a-run").mkdir()
    registry = Registry(home / "registry.db")
    registry.add(train.name, "tiny_ner", "dev-slurm", "slurm", "train", train, ["17"], state="completed")
    registry.close()

    def doctor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "launcher.cli", "doctor", *args], env=launch_env,
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip

    proc = doctor("--rebuild-registry")
    assert proc.returncode == 0, proc.stderr
    assert "rebuilt" in proc.stdout and "4 run(s)" in proc.stdout and "1 with their state" in proc.stdout
    assert "journal    wal" in proc.stdout and "filesystem local disk" in proc.stdout
    db = sqlite3.connect(home / "registry.db")
    states = dict(db.execute("SELECT run_id, state FROM runs").fetchall())
    assert states[train.name] == "completed"  # kept from the old registry
    assert states["tiny_ner_eval-20261201-0001-bbbb"] == "unknown"  # the scheduler is asked next
    entries = dict(db.execute("SELECT run_id, entry FROM runs").fetchall())
    assert entries["tiny_ner_eval-20261201-0001-bbbb"] == train.name
    assert entries["tiny_ner-20261201-0002-cccc"] == "sweep-tiny_ner-x"
    assert db.execute("SELECT sweep_id, keys FROM sweeps").fetchall() == [
        ("sweep-tiny_ner-x", '["train.lr"]')
    ]
    db.close()

    (home / "registry.db").write_bytes(b"this is no database" * 100)  # damaged: rebuilt all the same
    proc = doctor("--rebuild-registry")
    assert proc.returncode == 0, proc.stderr
    assert "4 run(s)" in proc.stdout and "0 with their state" in proc.stdout
    assert not list(home.glob("registry.db.rebuild*"))
