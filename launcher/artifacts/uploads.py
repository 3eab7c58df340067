"""What of a run belongs in its artifact store, what made it there, and uploading the rest.

A run with `artifacts.uri` set mirrors into `<uri>/<run_id>/` (launcher.artifacts.store has the protocol).
Units, each a path relative to the run directory:

    recipe.yaml, launch.json          single files (launch.json changes as the run goes: re-sent on sync)
    checkpoints/checkpoint-<N>        complete checkpoints (with their COMPLETE marker) when
                                      artifacts.upload_checkpoints
    results/train.json                the training summary
    results/<ckpt>/<eval recipe>/     an evaluation's results, once its metrics.json is written
                                      (results/<ckpt>/ itself in runs from before that layout)

The ledger `<run_dir>/uploads.json` records each unit's state, written under a file lock (an eval
job of another run may record its results in a training run's ledger at the same time):

    {"uri": "s3://bucket/prefix/RUN", "units": {"checkpoints/checkpoint-10": {"state": "uploaded",
     "stamp": "...", "files": 9, "bytes": 123, "sent": 9, "at": "2026-..."},
     "checkpoints/checkpoint-20": {"state": "failed", "error": "...", "at": "..."}}}

state: queued | uploading | uploaded | failed. A unit is pending upload when it is not `uploaded`
with the stamp (sizes and mtimes) its files have now. `launch status` reads this file only;
`launch sync RUN` uploads every pending unit and re-checks the store for the others.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launcher.artifacts import LEDGER
from launcher.artifacts.store import Store
from launcher.artifacts.transport import ByteProgress, StoreError, StoreUnreachable
from launcher.config.recipe import Recipe, read_resolved
from launcher.errors import SetupError, UserError
from launcher.jsonio import atomic_write_json, read_object
from launcher.runs.checkpoints import CHECKPOINT_NAME, MARKER
from launcher.runs.launch_info import LaunchInfo

META_FILES = ("recipe.yaml", "launch.json")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- units


@dataclass(frozen=True)
class Unit:
    rel: str
    is_dir: bool

    @property
    def is_meta(self) -> bool:
        return self.rel in META_FILES


def store_for(recipe: Recipe, run_dir: Path) -> Store | None:
    """The run's store, or None when the recipe names none (or names the runs root itself)."""
    uri = recipe.artifacts.uri
    if not uri:
        return None
    if not uri.startswith("s3://") and not Path(uri).expanduser().is_absolute():
        uri = str(run_dir.parent.parent / uri)  # relative to the runs root's parent, as for ./runs
    store = Store(uri)
    if not store.is_s3 and Path(store.root) == run_dir.resolve().parent:
        return None
    return store


def run_id_of(run_dir: Path) -> str:
    return LaunchInfo.read(run_dir).run_id or run_dir.name


def units(run_dir: Path, recipe: Recipe) -> list[Unit]:
    """The units of the run that exist locally and belong in the store now (module docstring)."""
    found = [Unit(name, False) for name in META_FILES if (run_dir / name).is_file()]
    checkpoints = run_dir / "checkpoints"
    if recipe.artifacts.upload_checkpoints and checkpoints.is_dir():
        steps = {int(m.group(1)): p for p in checkpoints.iterdir() if (m := CHECKPOINT_NAME.match(p.name))}
        for step in sorted(steps):
            if (steps[step] / MARKER).is_file():
                found.append(Unit(f"checkpoints/{steps[step].name}", True))
    results = run_dir / "results"
    if (results / "train.json").is_file():
        found.append(Unit("results/train.json", False))
    for metrics in sorted(
        results.glob("**/metrics.json")
    ):  # results/<ckpt>/<eval>/ or the old results/<ckpt>/
        found.append(Unit(metrics.parent.relative_to(run_dir).as_posix(), True))
    return found


def stamp(path: Path) -> str:
    """A cheap fingerprint of a file or directory: relative paths, sizes and mtimes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    text = "\n".join(
        f"{p.relative_to(path).as_posix() if p != path else p.name} {p.stat().st_size} {p.stat().st_mtime_ns}"
        for p in files
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- ledger


class Ledger:
    """`<run_dir>/uploads.json`, read and changed under an exclusive lock."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LEDGER
        self.lock = run_dir / f".{LEDGER}.lock"

    def read(self) -> dict[str, Any]:
        data = read_object(self.path) or {}
        data.setdefault("units", {})
        return data

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            data = self.read()
            yield data
            atomic_write_json(self.path, data)

    def record(self, rel: str, uri: str | None = None, **entry: Any) -> None:
        """Replace unit `rel`'s entry (and the run's store URI when given)."""
        with self._locked() as data:
            if uri:
                data["uri"] = uri
            data["units"][rel] = {**entry, "at": _now()}


# ---------------------------------------------------------------------------- status


@dataclass
class UploadState:
    """What `launch status` shows: the store URI, units pending upload and the last error."""

    uri: str | None
    uploaded: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    error: str | None = None

    def summary(self, run_id: str) -> str:
        if not self.uri:
            return ""
        if not self.pending:
            return f"uploaded to {self.uri} ({len(self.uploaded)} unit(s))"
        names = ", ".join(p.rsplit("/", 1)[-1] for p in self.pending[:4])
        more = f" and {len(self.pending) - 4} more" if len(self.pending) > 4 else ""
        line = f"{len(self.pending)} pending upload to {self.uri} ({names}{more}); `launch sync {run_id}`"
        return line + (f"; last error: {self.error}" if self.error else "")


def upload_state(run_dir: Path, recipe: Recipe | None = None) -> UploadState:
    """Read-only: which units are uploaded and which are pending (no store is contacted)."""
    try:
        recipe = recipe or read_resolved(run_dir)
        store = store_for(recipe, run_dir)
    except (UserError, OSError, ValueError):  # a run of an older schema, or half deleted: no column
        return UploadState(None)
    if store is None:
        return UploadState(None)
    recorded = Ledger(run_dir).read()
    state = UploadState(recorded.get("uri") or store.child(run_id_of(run_dir)))
    for unit in units(run_dir, recipe):
        entry = recorded["units"].get(unit.rel) or {}
        done = entry.get("state") == "uploaded" and (
            unit.is_meta or entry.get("stamp") == stamp(run_dir / unit.rel)
        )
        (state.uploaded if done else state.pending).append(unit.rel)
        if not done and entry.get("error"):
            state.error = entry["error"]
    return state


# ---------------------------------------------------------------------------- uploading


@dataclass
class Outcome:
    rel: str
    ok: bool
    sent: int = 0
    files: int = 0
    bytes: int = 0
    error: str | None = None


def _digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def upload_unit(
    run_dir: Path, unit: Unit, store: Store, progress: ByteProgress | None = None, check_remote: bool = False
) -> Outcome:
    """Upload one unit and record the outcome in the ledger; a StoreError is recorded, not raised.

    A unit the ledger has as uploaded with the stamp its files have now is skipped; with
    `check_remote` only if the store still holds it (its COMPLETE manifest, or the file's size
    and sha256), else it is uploaded again.
    """
    ledger = Ledger(run_dir)
    run_uri = store.child(run_id_of(run_dir))
    uri = store.child(run_id_of(run_dir), unit.rel)
    local = run_dir / unit.rel
    try:
        now = stamp(local)
        entry = ledger.read()["units"].get(unit.rel) or {}
        if entry.get("state") == "uploaded" and entry.get("stamp") == now and unit.is_dir:
            if not check_remote:
                return Outcome(unit.rel, True, 0, entry.get("files", 0), entry.get("bytes", 0))
            remote = store.read_manifest(uri)
            if remote is not None and _digest(remote) == entry.get("manifest"):
                return Outcome(unit.rel, True, 0, entry.get("files", 0), entry.get("bytes", 0))
        ledger.record(unit.rel, run_uri, state="uploading", stamp=now)
        if unit.is_dir:
            manifest, sent = store.upload_dir(local, uri, progress=progress)
            files, size, digest = len(manifest.files), manifest.bytes, _digest(manifest.to_json())
        else:
            file_entry, was_sent = store.upload_file(local, uri, progress=progress)
            files, size, sent, digest = 1, file_entry.size, int(was_sent), file_entry.sha256[:16]
    except StoreError as err:
        ledger.record(unit.rel, run_uri, state="failed", error=str(err))
        return Outcome(unit.rel, False, error=str(err))
    except FileNotFoundError as err:
        message = f"{unit.rel}: deleted locally before it was uploaded ({err.filename})"
        ledger.record(unit.rel, run_uri, state="failed", error=message)
        return Outcome(unit.rel, False, error=message)
    ledger.record(unit.rel, state="uploaded", stamp=now, files=files, bytes=size, sent=sent, manifest=digest)
    return Outcome(unit.rel, True, sent, files, size)


def sync_run(
    run_dir: Path,
    report: Callable[[Outcome], None] | None = None,
    verify_remote: bool = True,
) -> list[Outcome]:
    """Upload every unit of the run that is not in its store yet (idempotent); the outcomes.

    With `verify_remote`, units the ledger has as uploaded are re-sent only when the store no
    longer holds them intact. Raises StoreError when the store cannot be used at all (endpoint
    down, credentials refused, no bucket) or a unit failed; what did upload stays recorded.
    """
    recipe = read_resolved(run_dir)
    store = store_for(recipe, run_dir)
    if store is None:
        raise UserError(f"{run_dir.name}: its recipe names no artifact store (artifacts.uri)")
    store.check()
    outcomes = []
    for unit in units(run_dir, recipe):
        outcome = upload_unit(run_dir, unit, store, check_remote=verify_remote)
        outcomes.append(outcome)
        if report:
            report(outcome)
        if not outcome.ok:
            left = sum(1 for u in upload_state(run_dir, recipe).pending)
            raise StoreError(f"{outcome.error}; {left} unit(s) of {run_dir.name} still pending upload")
    return outcomes


def upload_results(recipe: Recipe, run_dir: Path, results_dir: Path) -> Outcome | None:
    """Upload an evaluation's results directory to its store; for jobs.evaluate after scoring.

    The unit belongs to the run directory that holds `results_dir` (the training run when reeval
    pointed the eval there), under the eval recipe's artifacts.uri or else that run's own. None
    when no store is configured. Never raises for a store failure: it is recorded as pending.
    """
    above = [p for p in results_dir.resolve().parents if p.name == "results"]
    owner = above[0].parent if above and (above[0].parent / "recipe.yaml").is_file() else run_dir
    store = store_for(recipe, owner)
    if store is None and owner != run_dir:
        try:
            store = store_for(read_resolved(owner), owner)
        except UserError:
            store = None
    if store is None:
        return None
    rel = results_dir.resolve().relative_to(owner.resolve()).as_posix()
    outcome = upload_unit(owner, Unit(rel, True), store)
    own = store_for(recipe, run_dir)
    if outcome.ok and own is not None:
        for meta in META_FILES:
            if (run_dir / meta).is_file():
                upload_unit(run_dir, Unit(meta, False), own)
    return outcome


_CHECKED: set[str] = set()


def check_artifacts(recipe: Recipe) -> None:
    """Before a run is created: an s3:// store must answer, accept the credentials and have its
    bucket; a local one must be writable. One UserError line naming what is wrong, or a SetupError
    (exit 1) when the endpoint cannot be reached or does not answer within the check's short bound.
    Each URI is checked once per process (reeval prepares many runs)."""
    uri = recipe.artifacts.uri
    if not uri or uri in _CHECKED:
        return
    try:
        store = Store(uri)
        if store.is_s3 or Path(uri).expanduser().is_absolute():
            store.check()
    except StoreUnreachable as err:
        raise SetupError(f"{recipe.source}: artifacts.uri: {err}") from None
    except UserError as err:  # a StoreError too: refused credentials, no bucket, not writable
        raise UserError(f"{recipe.source}: artifacts.uri: {err}") from None
    _CHECKED.add(uri)
