"""SQLite registry of runs and their scheduler jobs under $LAUNCH_HOME: WAL on a local disk, a rollback
journal and a lock file on a network filesystem; its schema versioned and upgraded in place."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from launcher import paths
from launcher.errors import SetupError
from launcher.runs.netfs import network_fs
from launcher.runs.state import RunState

T = TypeVar("T")

VERSION = 3
"""The schema's version, kept in `PRAGMA user_version` (0: the first schema, before versions)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    recipe      TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    backend     TEXT NOT NULL,
    job         TEXT NOT NULL,
    run_dir     TEXT NOT NULL,
    state       TEXT NOT NULL,
    parent      TEXT,
    restarts    INTEGER NOT NULL DEFAULT 0,
    note        TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    grp         TEXT,
    entry       TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    task        INTEGER NOT NULL,
    job_id      TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (run_id, task)
);
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id    TEXT PRIMARY KEY,
    recipe      TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    keys        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
"""

INDEXES = """
CREATE TABLE IF NOT EXISTS facts (
    run_id      TEXT PRIMARY KEY,
    stamp       TEXT NOT NULL,
    data        TEXT NOT NULL,
    jobs        TEXT
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_entry_created ON runs(created_at, entry) WHERE entry IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_entry ON runs(entry);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
CREATE INDEX IF NOT EXISTS runs_grp ON runs(grp) WHERE grp IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_recipe ON runs(recipe);
"""
"""Version 2: the facts cache and the indexes `launch status` pages with (`grp`, `entry`: below).
Version 3: the facts cache also keeps the run's job ids (`jobs`: joined by \\x1f in task order), so
`launch status --all` reads an ended run from two tables, not three; a cache, dropped by the upgrade."""

KEYS = """
UPDATE runs SET grp = CASE WHEN parent IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.run_id = runs.parent) THEN parent END;
UPDATE runs SET entry = CASE
    WHEN parent IS NULL THEN run_id
    WHEN grp IS NOT NULL THEN grp
    WHEN (SELECT p.grp FROM runs p WHERE p.run_id = runs.parent) IS NOT NULL THEN NULL
    ELSE parent END
"""
"""`grp`: the parent when it is no run id (a sweep's points); `entry`: the line of `launch status`
a row belongs to (its own run id, its parent run's, its group's; none for a sweep point's
evaluation, which the table leaves out). Set when a row is added, and by the migration."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunRow:
    """A row of `runs` with its `jobs` (task, job id, state). `state` is a RunState's value as
    stored (launcher.runs.state)."""

    run_id: str
    recipe: str
    cluster: str
    backend: str
    job: str
    run_dir: str
    state: str
    parent: str | None
    restarts: int
    note: str | None
    created_at: str
    updated_at: str
    jobs: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        return [job_id for _, job_id, _ in self.jobs]


@dataclass
class SweepRow:
    """A sweep; its points are the runs whose parent is `sweep_id`. `keys`: the varied recipe keys."""

    sweep_id: str
    recipe: str
    cluster: str
    keys: list[str]
    created_at: str


class Registry:
    """One SQLite file; every write is a short IMMEDIATE transaction, so concurrent CLIs queue.

    On a local disk the journal is WAL (readers never wait); on a network filesystem (NFS,
    Lustre, GPFS, ...: launcher.runs.netfs), where WAL's shared memory is not shared between
    hosts, it is a rollback journal (DELETE) and every write also holds `registry.lock` (fcntl)."""

    def __init__(self, path: Path | None = None, create: bool = True) -> None:
        """Open (creating if needed) the registry and bring an older schema up to VERSION (once, in
        one transaction); one that cannot be used is a SetupError.

        With `create` false (a dry run) nothing is created: where there is no registry file yet,
        this one is empty and lives in memory only."""
        self.path = path or paths.launch_home() / "registry.db"
        home = self.path.parent
        in_memory = not create and not self.path.exists()
        try:
            if not in_memory:
                home.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SetupError(f"{home}: $LAUNCH_HOME is not a directory; point LAUNCH_HOME at one") from None
        except OSError as err:
            raise SetupError(f"{home}: cannot create $LAUNCH_HOME: {err.strerror}") from None
        self.network = None if in_memory else network_fs(home)
        self._lock_fd: int | None = None
        try:
            self._conn = sqlite3.connect(
                ":memory:" if in_memory else self.path, timeout=60, isolation_level=None
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 60000")
            mode = "DELETE" if self.network else "WAL"
            self._retry(lambda: self._conn.execute(f"PRAGMA journal_mode = {mode}"))
            self._conn.execute("PRAGMA synchronous = " + ("FULL" if self.network else "NORMAL"))
            if self._version() != VERSION:
                self._upgrade()
            self._conn.execute("SELECT run_id, state, entry FROM runs LIMIT 1").fetchall()
        except sqlite3.DatabaseError as err:
            raise SetupError(self._unusable(err)) from None

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _upgrade(self) -> None:
        """Create the schema, or migrate an older one in place: one IMMEDIATE transaction (the
        version is read again inside it: another process may have done it meanwhile)."""
        with self._write() as conn:
            version = self._version()
            if version > VERSION:
                raise SetupError(
                    f"{self.path}: the run registry has schema {version}, newer than this launcher's "
                    f"({VERSION}); upgrade recipe-launcher"
                )
            if version == VERSION:
                return
            old = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
            for statement in _statements(SCHEMA):
                conn.execute(statement)
            columns = {r["name"] for r in conn.execute("PRAGMA table_info(runs)")}
            for column in ("grp", "entry"):
                if column not in columns:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
            if old and version < 2:
                for statement in _statements(KEYS):
                    conn.execute(statement)
            conn.execute("DROP TABLE IF EXISTS facts")
            for statement in _statements(INDEXES):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {VERSION}")

    def _unusable(self, err: sqlite3.Error) -> str:
        text = str(err)
        if "not a database" in text or "malformed" in text:
            why = (
                f"it is damaged ({text}); `launch doctor --rebuild-registry` rebuilds it from the run "
                "directories (or move it aside and a new, empty registry is made)"
            )
        elif "readonly" in text or "unable to open" in text:
            why = f"{text}: $LAUNCH_HOME must be writable"
        else:
            why = text
        return f"{self.path}: the run registry cannot be used: {why}"

    @staticmethod
    def _retry(fn: Callable[[], T], attempts: int = 50) -> T:
        """Run `fn`, retrying while another process holds the lock (pragmas ignore busy_timeout)."""
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as err:
                if ("locked" not in str(err) and "busy" not in str(err)) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))
        raise AssertionError("unreachable")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._file_lock():
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """On a network filesystem: `registry.lock` held (fcntl, which NFS's lock manager and
        Lustre's flock mount option carry between hosts) for the length of a write."""
        if not self.network:
            yield
            return
        import fcntl

        if self._lock_fd is None:
            self._lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.lockf(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)

    def exists(self, run_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is not None

    def record_jobs(self, run_id: str, job_ids: list[str], state: str = RunState.PENDING.value) -> None:
        """The scheduler's job ids of a row registered as `submitting`, once the submit answered."""
        now = _now()
        with self._write() as conn:
            conn.execute("UPDATE runs SET state=?, updated_at=? WHERE run_id=?", (state, now, run_id))
            conn.execute("DELETE FROM jobs WHERE run_id=?", (run_id,))
            conn.executemany(
                "INSERT INTO jobs VALUES (?,?,?,?)", [(run_id, i, j, state) for i, j in enumerate(job_ids)]
            )
            _forget_facts(conn, run_id)

    def remove(self, run_id: str) -> None:
        """Forget a run that was never submitted."""
        with self._write() as conn:
            _forget_facts(conn, run_id)
            conn.execute("DELETE FROM jobs WHERE run_id=?", (run_id,))
            conn.execute("DELETE FROM runs WHERE run_id=?", (run_id,))

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def add(
        self,
        run_id: str,
        recipe: str,
        cluster: str,
        backend: str,
        job: str,
        run_dir: Path,
        job_ids: list[str],
        state: str = RunState.PENDING.value,
        parent: str | None = None,
        created_at: str | None = None,
    ) -> None:
        """Register a run (`created_at`: now unless given, as a rebuild gives it)."""
        now = _now()
        with self._write() as conn:
            grp, entry = _keys(conn, run_id, parent)
            conn.execute(
                "INSERT INTO runs (run_id, recipe, cluster, backend, job, run_dir, state, parent, restarts,"
                " note, created_at, updated_at, grp, entry) VALUES (?,?,?,?,?,?,?,?,0,NULL,?,?,?,?)",
                (run_id, recipe, cluster, backend, job, str(run_dir), state, parent, created_at or now, now,
                 grp, entry),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO jobs VALUES (?,?,?,?)",
                [(run_id, i, job_id, state) for i, job_id in enumerate(job_ids)],
            )
            _forget_facts(conn, run_id)

    def set_state(
        self,
        run_id: str,
        state: str,
        task_states: dict[int, str] | None = None,
        note: str | None = None,
        restarts: int | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET state=?, updated_at=?, note=COALESCE(?, note),"
                " restarts=COALESCE(?, restarts) WHERE run_id=?",
                (state, _now(), note, restarts, run_id),
            )
            for task, task_state in (task_states or {}).items():
                conn.execute("UPDATE jobs SET state=? WHERE run_id=? AND task=?", (task_state, run_id, task))
            _forget_facts(conn, run_id)

    # ------------------------------------------------------------------------ reading

    def _rows(
        self, where: str = "", args: Sequence[object] = (), order: str = "created_at, run_id"
    ) -> list[RunRow]:
        runs = self._conn.execute(f"SELECT {COLUMNS} FROM runs {where} ORDER BY {order}", tuple(args))
        return self.with_jobs([RunRow(*r) for r in runs.fetchall()])

    def with_jobs(self, rows: list[RunRow]) -> list[RunRow]:
        """`rows` with their jobs, read in batches (one query per 500 rows)."""
        by_id = {row.run_id: row for row in rows}
        ids = list(by_id)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            found = self._conn.execute(
                f"SELECT run_id, task, job_id, state FROM jobs WHERE run_id IN ({_marks(chunk)})"
                " ORDER BY run_id, task",
                chunk,
            )
            for run_id, task, job_id, state in found:
                by_id[run_id].jobs.append((task, job_id, state))
        return rows

    def get(self, run_id: str) -> RunRow | None:
        rows = self._rows("WHERE run_id=?", (run_id,))
        return rows[0] if rows else None

    def find(self, prefix: str) -> list[RunRow]:
        """Runs whose id equals or starts with `prefix` (a range of the primary key)."""
        exact = self.get(prefix)
        if exact:
            return [exact]
        return self._rows("WHERE run_id >= ? AND run_id < ?", (prefix, prefix + "\U0010ffff"))

    def near(self, ref: str, limit: int = 2000) -> list[str]:
        """Run ids that share their first letters with `ref` (for "did you mean"), at most `limit`."""
        head = ref[: max(1, min(len(ref) // 2, 8))]
        found = self._conn.execute(
            "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? LIMIT ?",
            (head, head + "\U0010ffff", limit),
        )
        return [r[0] for r in found]

    def all(self) -> list[RunRow]:
        return self._rows()

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def children(self, parent: str) -> list[RunRow]:
        """The runs whose parent is `parent` (a sweep's points, a training run's evaluations)."""
        return self._rows("WHERE parent=?", (parent,))

    def query(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        """A read-only query for the views' pages (launcher.runs.pages); rows as sqlite3.Row."""
        return self._conn.execute(sql, tuple(args))

    def rows_where(
        self, where: str, args: Sequence[object] = (), order: str = "created_at, run_id"
    ) -> list[RunRow]:
        """Rows (with their jobs) matching an SQL condition over `runs`' columns."""
        return self._rows(f"WHERE {where}", args, order)

    # ------------------------------------------------------------------------ the facts cache

    def facts(self, run_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """run id -> (stamp, data) of the cached facts of those runs that have some."""
        out: dict[str, tuple[str, str]] = {}
        ids = list(run_ids)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            found = self._conn.execute(
                f"SELECT run_id, stamp, data FROM facts WHERE run_id IN ({_marks(chunk)})", chunk
            )
            out.update((run_id, (stamp, data)) for run_id, stamp, data in found)
        return out

    def store_facts(self, items: Sequence[tuple[str, str, str]]) -> None:
        """Cache (run id, stamp, data) of ended runs, with their job ids as they stand (every write
        to a run's jobs forgets its facts); a registry that is busy just skips it."""
        if not items:
            return
        try:
            with self._write() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO facts SELECT ?, ?, ?,"
                    " (SELECT group_concat(job_id, char(31)) FROM jobs WHERE jobs.run_id = ?)"
                    " WHERE EXISTS (SELECT 1 FROM runs WHERE run_id=?)",
                    [(run_id, stamp, data, run_id, run_id) for run_id, stamp, data in items],
                )
        except sqlite3.OperationalError:
            pass

    def forget_facts(self, run_ids: Sequence[str]) -> None:
        """Those runs' cached facts are read from their files again: for a writer that changes an
        ended run's files without changing its row (`launch sync`)."""
        ids = list(run_ids)
        with self._write() as conn:
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                conn.execute(f"DELETE FROM facts WHERE run_id IN ({_marks(chunk)})", chunk)

    def add_sweep(self, sweep_id: str, recipe: str, cluster: str, keys: list[str]) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sweeps VALUES (?,?,?,?,?)", (sweep_id, recipe, cluster, json.dumps(keys), _now())
            )

    def remove_sweep(self, sweep_id: str) -> None:
        """Forget a sweep that was never submitted."""
        with self._write() as conn:
            conn.execute("DELETE FROM sweeps WHERE sweep_id=?", (sweep_id,))

    def _sweeps(self, where: str = "", args: tuple[str, ...] = ()) -> list[SweepRow]:
        rows = self._conn.execute(f"SELECT * FROM sweeps {where} ORDER BY created_at, sweep_id", args)
        return [SweepRow(**{**dict(r), "keys": json.loads(r["keys"])}) for r in rows.fetchall()]

    def sweeps(self) -> list[SweepRow]:
        return self._sweeps()

    def sweep(self, sweep_id: str) -> SweepRow | None:
        rows = self._sweeps("WHERE sweep_id=?", (sweep_id,))
        return rows[0] if rows else None

    def find_sweeps(self, prefix: str) -> list[SweepRow]:
        """Sweeps whose id equals or starts with `prefix`."""
        exact = self.sweep(prefix)
        if exact:
            return [exact]
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._sweeps("WHERE sweep_id LIKE ? ESCAPE '\\'", (escaped + "%",))


COLUMNS = (
    "run_id, recipe, cluster, backend, job, run_dir, state, parent, restarts, note, created_at, updated_at"
)
"""The columns of a RunRow, in its order."""

BATCH = 500
"""Ids per `IN (...)` query (SQLite allows 999 parameters in older builds)."""


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


def _keys(conn: sqlite3.Connection, run_id: str, parent: str | None) -> tuple[str | None, str | None]:
    """(grp, entry) of a new row (SCHEMA's KEYS, for one row)."""
    if parent is None:
        return None, run_id
    found = conn.execute("SELECT grp FROM runs WHERE run_id=?", (parent,)).fetchone()
    if found is None:
        return parent, parent
    return None, (None if found[0] is not None else parent)


def _forget_facts(conn: sqlite3.Connection, run_id: str) -> None:
    """A row changed: its cached facts, and its parent's (an evaluation writes the parent's
    results), are read again."""
    conn.execute(
        "DELETE FROM facts WHERE run_id=? OR run_id=(SELECT parent FROM runs WHERE run_id=?)",
        (run_id, run_id),
    )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
