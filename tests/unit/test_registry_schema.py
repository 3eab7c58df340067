"""The registry's pure parts: which filesystem a path is on (from mountinfo and /proc/mounts texts),
and an old-schema registry file upgraded once, in place, with its rows' status keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from launcher.runs import netfs
from launcher.runs.registry import VERSION, Registry

MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 22 0:31 / /home rw,relatime shared:20 - nfs4 fs1:/export/home rw,vers=4.2
36 35 0:32 / /home/alice/scratch rw shared:21 - lustre 10.0.0.1@o2ib:/scratch rw,flock
37 22 0:33 / /mnt/my\040share rw - cifs //srv/share rw
38 22 0:34 / /gpfs rw - gpfs gpfs0 rw
39 22 0:35 / /sshfs rw - fuse.sshfs alice@host: rw
40 22 0:36 / /tmp rw - tmpfs tmpfs rw
"""

MOUNTS = """/dev/sda1 / ext4 rw,relatime 0 0
fs1:/export/home /home nfs rw,vers=3 0 0
beegfs_nodev /beegfs beegfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/home/alice/.launch", "nfs4"), ("/home/alice/scratch/runs", "lustre"), ("/mnt/my share/x", "cifs"),
     ("/gpfs/lab", "gpfs"), ("/sshfs/a", "fuse.sshfs"), ("/tmp/launch", None), ("/var/lib", None),
     ("/homework", None)],
)  # fmt: skip
def test_the_longest_mount_point_names_the_filesystem(
    path: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(netfs.ENV, raising=False)
    assert netfs.network_fs(Path(path), MOUNTINFO) == expected


def test_proc_mounts_reads_too_and_the_variable_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(netfs.ENV, raising=False)
    mounts = netfs.parse_mounts(MOUNTS)
    assert mounts == [("/", "ext4"), ("/home", "nfs"), ("/beegfs", "beegfs")]
    assert netfs.network_fs(Path("/beegfs/lab"), MOUNTS) == "beegfs"
    assert netfs.network_fs(Path("/opt"), MOUNTS) is None
    monkeypatch.setenv(netfs.ENV, "local")
    assert netfs.network_fs(Path("/home/a"), MOUNTS) is None
    monkeypatch.setenv(netfs.ENV, "network")
    assert netfs.network_fs(Path("/opt"), MOUNTS) is not None
    assert netfs.NETWORK_MAGIC[0x6969] == "nfs" and netfs.NETWORK_MAGIC[0x0BD00BD0] == "lustre"


OLD_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, recipe TEXT NOT NULL, cluster TEXT NOT NULL,
  backend TEXT NOT NULL, job TEXT NOT NULL, run_dir TEXT NOT NULL, state TEXT NOT NULL, parent TEXT,
  restarts INTEGER NOT NULL DEFAULT 0, note TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE jobs (run_id TEXT NOT NULL REFERENCES runs(run_id), task INTEGER NOT NULL,
  job_id TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (run_id, task));
CREATE INDEX runs_state ON runs(state);
CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, recipe TEXT NOT NULL, cluster TEXT NOT NULL,
  keys TEXT NOT NULL, created_at TEXT NOT NULL);
"""


def test_an_old_registry_is_upgraded_once_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(netfs.ENV, "local")
    path = tmp_path / "registry.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    rows = [("train-a", None), ("eval-1", "train-a"), ("pt-0", "sweep-x"), ("pt-0-eval", "pt-0")]
    for i, (run_id, parent) in enumerate(rows):
        when = f"2026-12-01T00:0{i}:00+00:00"
        values = (run_id, "r", "local", "local", "train", f"/x/{run_id}", "completed", parent, when, when)
        db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,0,NULL,?,?)", values)
        db.execute("INSERT INTO jobs VALUES (?,0,?,?)", (run_id, f"{i}", "completed"))
    db.commit()
    db.close()

    registry = Registry(path)
    keys = dict(registry.query("SELECT run_id, entry FROM runs").fetchall())
    assert keys == {"train-a": "train-a", "eval-1": "train-a", "pt-0": "sweep-x", "pt-0-eval": None}
    assert registry.query("PRAGMA user_version").fetchone()[0] == VERSION
    assert [r.run_id for r in registry.all()] == [r for r, _ in rows]
    assert registry.get("eval-1").jobs == [(0, "1", "completed")]  # type: ignore[union-attr]
    assert [r.run_id for r in registry.find("pt-0")] == ["pt-0"]
    assert [r.run_id for r in registry.find("pt")] == ["pt-0", "pt-0-eval"]
    registry.close()
    db = sqlite3.connect(path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"runs_entry", "runs_parent", "runs_created", "runs_state"} <= indexes
    db.execute("UPDATE runs SET entry='kept' WHERE run_id='pt-0-eval'")
    db.commit()
    db.close()
    Registry(path).close()  # opened again: at VERSION already, nothing is migrated twice
    assert sqlite3.connect(path).execute("SELECT entry FROM runs WHERE run_id='pt-0-eval'").fetchone() == (
        "kept",
    )


def test_a_registry_newer_than_the_launcher_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    Registry(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {VERSION + 1}")
    db.close()
    with pytest.raises(Exception, match="newer than this launcher"):
        Registry(path)


def test_a_version_2_registry_keeps_its_rows_and_drops_its_facts_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(netfs.ENV, "local")
    path = tmp_path / "registry.db"
    registry = Registry(path)
    registry.add("train-a", "r", "local", "local", "train", tmp_path / "train-a", ["7"], state="completed")
    registry.close()
    db = sqlite3.connect(path)  # as version 2 left it: its facts without job ids, an entry of its own
    db.executescript(
        "DROP TABLE facts;"
        "CREATE TABLE facts (run_id TEXT PRIMARY KEY, stamp TEXT NOT NULL, data TEXT NOT NULL);"
        "INSERT INTO facts VALUES ('train-a', '2|completed|x|0', '{}'); UPDATE runs SET entry = 'kept';"
        "PRAGMA user_version = 2;"
    )
    db.close()

    registry = Registry(path)
    assert registry.query("PRAGMA user_version").fetchone()[0] == VERSION == 3
    assert registry.facts(["train-a"]) == {}  # a cache: read again from the run's files
    assert registry.query("SELECT entry FROM runs").fetchall()[0][0] == "kept"  # keys were set by v2
    registry.store_facts([("train-a", "3|completed|x|0", "{}")])
    assert registry.query("SELECT jobs FROM facts").fetchone()[0] == "7"
    registry.close()
