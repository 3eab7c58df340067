"""Code snapshots: Python packages frozen at submit time, content-addressed, beside the runs.

A snapshot holds package directories (`launcher`, `jobs`, a project's own packages) as they are
on disk when a run is submitted. Its id is the first 16 hex digits of a sha256 over the sorted
lines `<path>\\0<x or ->\\0<sha256 of the bytes>` of every file (`__pycache__`, `*.pyc` and
`.mypy_cache` left out), so identical code is one snapshot however many runs use it:

    <runs root>/.snapshots/<id>/<package>/...   the files (read-only), hard links into objects/
    <runs root>/.snapshots/<id>/SNAPSHOT.json   {id, files, bytes, created, sources}
    <runs root>/.snapshots/objects/<sha256>[.x] each content once across all snapshots

`plan()` only reads and hashes (what `--dry-run` uses; once per process for the same directories:
a 1000-point sweep hashes once); `store()` writes a planned snapshot unless it exists: into a
temporary directory beside it, renamed into place, so two identical submits at once are harmless.
A file whose bytes changed between plan and store is refused (the id would lie). Where a hard link
cannot be made (another user's object under fs.protected_hardlinks, a file system without links)
the file is copied.

`inventory()` lists the snapshots with the runs that refer to them (their launch.json `code`) and
`prune()` removes the unreferenced ones older than `PRUNE_MIN_AGE_S` (a submit in flight writes
its snapshot before its launch.json) and every object no snapshot links to.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from launcher.errors import SetupError
from launcher.jsonio import atomic_write_json, read_object

DIR = ".snapshots"
OBJECTS = "objects"
MANIFEST = "SNAPSHOT.json"
ID_LENGTH = 16
SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache"})
SKIP_SUFFIXES = (".pyc",)
PRUNE_MIN_AGE_S = 600
"""A snapshot younger than this is never pruned: its submit may not have written launch.json yet."""


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot: where it is (`rel`, starting with its package's directory name) and
    where it was read from."""

    rel: str
    source: Path
    executable: bool
    digest: str
    size: int

    @property
    def object_name(self) -> str:
        return self.digest + (".x" if self.executable else "")


@dataclass(frozen=True)
class Planned:
    """A snapshot as `plan()` hashed it: its id, where it goes, and its files."""

    id: str
    root: Path
    """The snapshots directory (`<runs root>/.snapshots`)."""
    sources: tuple[Path, ...]
    entries: tuple[Entry, ...]

    @property
    def path(self) -> Path:
        return self.root / self.id

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


def snapshots_dir(runs_root: Path) -> Path:
    return runs_root / DIR


def _walk(package: Path) -> Iterator[tuple[str, Path]]:
    """(path relative to the package's parent, file) of every file of a package directory."""
    for folder, dirs, names in os.walk(package, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            if name.endswith(SKIP_SUFFIXES):
                continue
            path = Path(folder, name)
            if path.is_file():
                yield path.relative_to(package.parent).as_posix(), path


def _entry(rel: str, path: Path) -> Entry:
    data = path.read_bytes()
    executable = bool(path.stat().st_mode & stat.S_IXUSR)
    return Entry(rel, path, executable, hashlib.sha256(data).hexdigest(), len(data))


def snapshot_id(entries: Iterable[Entry]) -> str:
    """The content address of a set of files."""
    digest = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.rel):
        digest.update(f"{e.rel}\0{'x' if e.executable else '-'}\0{e.digest}\n".encode())
    return digest.hexdigest()[:ID_LENGTH]


_planned: dict[tuple[tuple[Path, ...], Path], Planned] = {}


def plan(packages: Iterable[Path], runs_root: Path) -> Planned:
    """Hash the package directories (the first of two with one name wins); writes nothing.
    Memoized per process for the same directories and runs root."""
    sources = tuple(dict.fromkeys(Path(p).resolve() for p in packages))
    key = (sources, runs_root)
    if key not in _planned:
        entries: dict[str, Entry] = {}
        for package in sources:
            try:
                for rel, path in _walk(package):
                    entries.setdefault(rel, _entry(rel, path))
            except OSError as err:
                raise SetupError(f"{package}: cannot read the code to snapshot: {err}") from None
        found = tuple(entries.values())
        _planned[key] = Planned(snapshot_id(found), snapshots_dir(runs_root), sources, found)
    return _planned[key]


def forget() -> None:
    """Drop what `plan()` memoized (for a process that edits the code it submits)."""
    _planned.clear()


# ---------------------------------------------------------------- storing


def _write_object(objects: Path, entry: Entry) -> Path:
    """The object of `entry`, written unless it is there; its bytes must still hash as planned."""
    target = objects / entry.object_name
    if target.is_file():
        return target
    data = entry.source.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.digest:
        raise SetupError(
            f"{entry.source} changed while it was being snapshotted; submit again once the code is saved"
        )
    tmp = objects / f".{entry.object_name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        tmp.write_bytes(data)
        tmp.chmod(0o555 if entry.executable else 0o444)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _place(objects: Path, entry: Entry, dest: Path) -> None:
    """`dest` as a hard link to the entry's object (rewritten once if a prune just removed it),
    else as a copy."""
    for _ in range(2):
        source = _write_object(objects, entry)
        try:
            os.link(source, dest)
            return
        except FileNotFoundError:
            continue
        except OSError:
            break
    shutil.copyfile(_write_object(objects, entry), dest)
    dest.chmod(0o555 if entry.executable else 0o444)


def _drop_unlinked(objects: Path, planned: Planned) -> None:
    """After a failed store: the objects of `planned` that no snapshot links to (its own tree is
    gone) and that were written in the last minute (by this store, not by one a prune waits for)."""
    recent = time.time() - 60
    for entry in planned.entries:
        path = objects / entry.object_name
        with suppress(OSError):
            info = path.stat()
            if info.st_nlink == 1 and info.st_mtime > recent:
                path.unlink()


def _touch(path: Path) -> None:
    """Mark a snapshot as just used (a prune keeps it for PRUNE_MIN_AGE_S)."""
    with suppress(OSError):
        os.utime(path / MANIFEST)


def store(planned: Planned) -> Path:
    """Write the planned snapshot unless it exists; returns its directory."""
    target = planned.path
    if (target / MANIFEST).is_file():
        _touch(target)
        return target
    objects = planned.root / OBJECTS
    tmp = planned.root / f".tmp-{planned.id}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        objects.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for entry in planned.entries:
            dest = tmp / entry.rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            _place(objects, entry, dest)
        manifest = {
            "id": planned.id,
            "files": planned.files,
            "bytes": planned.bytes,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "sources": [str(s) for s in planned.sources],
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / MANIFEST).is_file():
                raise
            _touch(target)  # an identical submit stored it first
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _drop_unlinked(objects, planned)
        for empty in (objects, planned.root):  # a first store that failed (a full disk) leaves nothing
            with suppress(OSError):
                empty.rmdir()
        raise SetupError(f"{target}: cannot store the code snapshot: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------- listing and pruning


@dataclass(frozen=True)
class Stored:
    """A snapshot on disk, with the runs that refer to it."""

    id: str
    path: Path
    files: int
    bytes: int
    created: str
    last_used: float
    """The newest of its directory's and its manifest's modification times."""
    runs: tuple[str, ...]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def inventory(root: Path, references: dict[str, list[str]]) -> list[Stored]:
    """Every snapshot under `root` (a snapshots directory), oldest first; `references` maps a
    snapshot id to the run ids that name it."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.name == OBJECTS or not path.is_dir():
            continue
        manifest = read_object(path / MANIFEST) or {}
        used = max(_mtime(path), _mtime(path / MANIFEST))
        files, size = manifest.get("files"), manifest.get("bytes")
        if not isinstance(files, int) or not isinstance(size, int):
            files, size = _measure(path)
        created = str(manifest.get("created") or "")
        runs = tuple(sorted(references.get(path.name, [])))
        found.append(Stored(path.name, path, files, size, created, used, runs))
    return sorted(found, key=lambda s: (s.created, s.id))


def _measure(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST]
    return len(files), sum(p.stat().st_size for p in files)


@dataclass(frozen=True)
class Pruned:
    """What a prune removed (or, dry, would remove): snapshots, orphaned objects, bytes freed."""

    snapshots: tuple[str, ...]
    kept_young: tuple[str, ...]
    objects: int
    freed: int


def _object_sizes(objects: Path) -> dict[Path, tuple[int, int]]:
    """{object: (size, links)}."""
    if not objects.is_dir():
        return {}
    sizes = {}
    for path in objects.iterdir():
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            sizes[path] = (st.st_size, st.st_nlink)
    return sizes


def _links_from(snapshot: Path) -> dict[tuple[int, int], tuple[int, int]]:
    """{(device, inode): (links from this snapshot, size)} of its files."""
    counts: dict[tuple[int, int], tuple[int, int]] = {}
    for path in snapshot.rglob("*"):
        with suppress(OSError):
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and path.name != MANIFEST:
                key = (st.st_dev, st.st_ino)
                counts[key] = (counts.get(key, (0, 0))[0] + 1, st.st_size)
    return counts


def prune(root: Path, references: dict[str, list[str]], dry_run: bool = False) -> Pruned:
    """Remove the snapshots no run refers to (none used within PRUNE_MIN_AGE_S), then every object
    no snapshot links to; `dry_run` removes nothing and says what would go. `freed` counts the
    bytes that leave the disk: an object's once its last link goes, a copied file's own."""
    now = time.time()
    unused = [s for s in inventory(root, references) if not s.runs]
    young = tuple(s.id for s in unused if now - s.last_used < PRUNE_MIN_AGE_S)
    doomed = [s for s in unused if s.id not in young]
    objects = _object_sizes(root / OBJECTS)
    by_inode: dict[tuple[int, int], Path] = {}
    for path in objects:
        with suppress(OSError):
            st = path.lstat()
            by_inode[(st.st_dev, st.st_ino)] = path
    links = {path: nlink for path, (_, nlink) in objects.items()}
    freed = 0
    for snap in doomed:
        for inode, (count, size) in _links_from(snap.path).items():
            obj = by_inode.get(inode)
            if obj is None:  # a copy, not a link: its own bytes
                freed += size
            else:
                links[obj] -= count
        if not dry_run:
            shutil.rmtree(snap.path, ignore_errors=True)
    orphans = [path for path, nlink in links.items() if nlink <= 1]
    freed += sum(objects[path][0] for path in orphans)
    if not dry_run:
        for path in orphans:
            path.unlink(missing_ok=True)
        for tmp in root.glob(".tmp-*") if root.is_dir() else []:
            if now - _mtime(tmp) > PRUNE_MIN_AGE_S:  # left by a submit that was killed
                shutil.rmtree(tmp, ignore_errors=True)
    return Pruned(tuple(s.id for s in doomed), young, len(orphans), freed)


def run_dirs(runs_root: Path, registered: Iterable[Path]) -> list[Path]:
    """The runs that may refer to snapshots: every directory with a launch.json under the runs
    root, and every registered run's directory (wherever it is)."""
    found = [p.parent for p in runs_root.glob("*/launch.json")] if runs_root.is_dir() else []
    return list(dict.fromkeys([*found, *registered]))


def referenced(run_dirs: Iterable[Path]) -> dict[str, list[str]]:
    """{snapshot id: run ids} from the launch.json `code` of each run directory."""
    refs: dict[str, list[str]] = {}
    for run_dir in run_dirs:
        data = read_object(run_dir / "launch.json") or {}
        code = data.get("code")
        snap = code.get("snapshot") if isinstance(code, dict) else None
        if isinstance(snap, str) and snap:
            refs.setdefault(snap, [])
            run_id = str(data.get("run_id") or run_dir.name)
            if run_id not in refs[snap]:
                refs[snap].append(run_id)
    return refs
