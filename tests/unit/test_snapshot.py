"""Code snapshots on disk: the content address, what is left out, storing once, sharing contents
between snapshots, and pruning what no run refers to. Real files in a temporary directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from launcher.errors import SetupError
from launcher.jsonio import read_object
from launcher.runs import snapshot
from launcher.runs.launch_info import LaunchInfo


@pytest.fixture(autouse=True)
def _fresh() -> None:
    snapshot.forget()  # these tests edit the code they plan


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / next(iter(files)).split("/")[0]


def test_the_id_is_the_hash_of_paths_exec_bits_and_contents(tmp_path: Path) -> None:
    package = _package(tmp_path / "src", {"pkg/a.py": "hi"})
    planned = snapshot.plan([package], tmp_path / "runs")
    # sha256 of "pkg/a.py\0-\0" + sha256(b"hi") + "\n", first 16 hex digits (worked out by hand once)
    assert planned.id == "13a44cfba749db63"
    assert (planned.files, planned.bytes) == (1, 2)
    assert planned.path == tmp_path / "runs" / ".snapshots" / "13a44cfba749db63"
    assert not (tmp_path / "runs").exists()  # planning writes nothing

    (package / "a.py").chmod(0o755)
    snapshot.forget()
    assert snapshot.plan([package], tmp_path / "runs").id != planned.id  # the exec bit counts


def test_caches_are_left_out_and_a_plan_is_made_once_per_process(tmp_path: Path) -> None:
    files = {"pkg/a.py": "x = 1\n", "pkg/__pycache__/a.cpython-311.pyc": "c", "pkg/.mypy_cache/x": "m",
             "pkg/sub/b.pyc": "c", "pkg/data/labels.csv": "a,b\n"}  # fmt: skip
    package = _package(tmp_path / "src", files)
    planned = snapshot.plan([package], tmp_path / "runs")
    assert sorted(e.rel for e in planned.entries) == ["pkg/a.py", "pkg/data/labels.csv"]
    (package / "a.py").write_text("x = 2\n")
    assert snapshot.plan([package], tmp_path / "runs") is planned  # memoized: a sweep hashes once
    snapshot.forget()
    assert snapshot.plan([package], tmp_path / "runs").id != planned.id


def test_store_writes_once_and_a_second_snapshot_shares_unchanged_contents(tmp_path: Path) -> None:
    package = _package(tmp_path / "src", {"pkg/a.py": "a" * 1000, "pkg/b.py": "b" * 500})
    runs = tmp_path / "runs"
    first = snapshot.plan([package], runs)
    path = snapshot.store(first)
    assert (path / "pkg" / "a.py").read_text() == "a" * 1000
    assert (path / "pkg" / "a.py").stat().st_mode & 0o222 == 0  # read-only files
    manifest = read_object(path / "SNAPSHOT.json")
    assert manifest and manifest["files"] == 2 and manifest["bytes"] == 1500
    assert snapshot.store(first) == path  # identical code: stored once
    assert len(list((runs / ".snapshots").iterdir())) == 2  # the snapshot and objects/

    (package / "b.py").write_text("B" * 500)  # a one-file edit
    snapshot.forget()
    second = snapshot.plan([package], runs)
    snapshot.store(second)
    a1, a2 = (path / "pkg" / "a.py").stat(), (second.path / "pkg" / "a.py").stat()
    assert (a1.st_ino, a2.st_nlink) == (a2.st_ino, 3)  # one content, two snapshots and the object
    assert (second.path / "pkg" / "b.py").read_text() == "B" * 500
    assert len(list((runs / ".snapshots" / "objects").iterdir())) == 3


def test_a_file_edited_between_plan_and_store_is_refused(tmp_path: Path) -> None:
    package = _package(tmp_path / "src", {"pkg/a.py": "one"})
    planned = snapshot.plan([package], tmp_path / "runs")
    (package / "a.py").write_text("two")
    with pytest.raises(SetupError, match="changed while it was being snapshotted"):
        snapshot.store(planned)
    assert not planned.path.exists() and not list((tmp_path / "runs" / ".snapshots").glob(".tmp-*"))


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    for p in (path, path / "SNAPSHOT.json"):
        os.utime(p, (when, when))


def test_prune_removes_unreferenced_old_snapshots_and_their_orphaned_contents(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    package = _package(tmp_path / "src", {"pkg/shared.py": "s" * 4000, "pkg/v.py": "1" * 1000})
    old = snapshot.store(snapshot.plan([package], runs))
    (package / "v.py").write_text("2" * 3000)
    snapshot.forget()
    kept = snapshot.store(snapshot.plan([package], runs))
    (package / "v.py").write_text("3" * 2000)
    snapshot.forget()
    young = snapshot.store(snapshot.plan([package], runs))
    _age(old, 3600)
    _age(kept, 3600)
    run_dir = runs / "r-1"
    run_dir.mkdir()
    LaunchInfo.model_validate({"run_id": "r-1", "code": {"snapshot": kept.name}}).write(run_dir)
    refs = snapshot.referenced(snapshot.run_dirs(runs, []))
    assert refs == {kept.name: ["r-1"]}

    dry = snapshot.prune(runs / ".snapshots", refs, dry_run=True)
    # old's own v.py (1000 bytes) goes; shared.py stays (kept and young link it)
    assert (dry.snapshots, dry.kept_young, dry.objects, dry.freed) == ((old.name,), (young.name,), 1, 1000)
    assert old.is_dir()
    done = snapshot.prune(runs / ".snapshots", refs)
    assert done == dry and not old.exists() and kept.is_dir() and young.is_dir()
    assert len(list((runs / ".snapshots" / "objects").iterdir())) == 3  # shared, v=2, v=3
    listed = {s.id: s.runs for s in snapshot.inventory(runs / ".snapshots", refs)}
    assert listed == {kept.name: ("r-1",), young.name: ()}


def test_an_old_launch_json_without_code_still_reads(tmp_path: Path) -> None:
    (tmp_path / "launch.json").write_text('{"run_id": "r", "git_commit": "abc", "git_dirty": true}')
    info = LaunchInfo.read(tmp_path)
    assert (info.run_id, info.git_commit, info.git_dirty, info.code) == ("r", "abc", True, None)
    (tmp_path / "launch.json").write_text('{"run_id": "r", "code": "not an object"}')
    assert LaunchInfo.read(tmp_path).code is None  # a bad value reads as missing


def test_status_and_show_say_which_code_ran(tmp_path: Path) -> None:
    from launcher.views.code import code_text

    snap = tmp_path / ".snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True)
    info = LaunchInfo.model_validate({"code": {
        "snapshot": snap.name, "path": str(snap), "files": 198, "bytes": 6_573_338,
        "git": {"root": "/p", "commit": "a" * 40, "dirty": True, "diff": "code.diff"},
    }})  # fmt: skip
    assert code_text(info) == f"snapshot {snap.name} (198 files, 6.6 MB), git {'a' * 12} dirty: code.diff"
    snap.rmdir()
    assert str(code_text(info)).endswith("dirty: code.diff; its directory is gone (pruned?)")
    live = LaunchInfo.model_validate({"code": {"live": True, "packages": ["/src/launcher", "/src/jobs"]}})
    assert code_text(live) == "LIVE checkout /src (--live-code: not a snapshot)"
    old = LaunchInfo.model_validate({"git_commit": "b" * 40, "git_dirty": False})
    assert code_text(old) == f"git {'b' * 12} (no snapshot: launched by an older version)"
    assert code_text(LaunchInfo()) is None
