"""SQLite registry of runs and their scheduler jobs, in WAL mode under $LAUNCH_HOME."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from launcher import paths
from launcher.errors import SetupError
from launcher.runs.state import RunState

T = TypeVar("T")

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
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    task        INTEGER NOT NULL,
    job_id      TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (run_id, task)
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id    TEXT PRIMARY KEY,
    recipe      TEXT NOT NULL,
    cluster     TEXT NOT NULL,
    keys        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
"""


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
    """One SQLite file; every write is a short IMMEDIATE transaction, so concurrent CLIs queue."""

    def __init__(self, path: Path | None = None, create: bool = True) -> None:
        """Open (creating if needed) the registry; one that cannot be used is a SetupError.

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
        try:
            self._conn = sqlite3.connect(
                ":memory:" if in_memory else self.path, timeout=60, isolation_level=None
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 60000")
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                for statement in _statements():
                    conn.execute(statement)
            self._conn.execute("SELECT run_id, state FROM runs LIMIT 1").fetchall()
        except sqlite3.DatabaseError as err:
            raise SetupError(self._unusable(err)) from None

    def _unusable(self, err: sqlite3.Error) -> str:
        text = str(err)
        if "not a database" in text or "malformed" in text:
            why = f"it is damaged ({text}); move it aside and a new, empty registry is made"
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
        self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

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

    def remove(self, run_id: str) -> None:
        """Forget a run that was never submitted."""
        with self._write() as conn:
            conn.execute("DELETE FROM jobs WHERE run_id=?", (run_id,))
            conn.execute("DELETE FROM runs WHERE run_id=?", (run_id,))

    def close(self) -> None:
        self._conn.close()

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
    ) -> None:
        now = _now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,0,NULL,?,?)",
                (run_id, recipe, cluster, backend, job, str(run_dir), state, parent, now, now),
            )
            conn.executemany(
                "INSERT INTO jobs VALUES (?,?,?,?)",
                [(run_id, i, job_id, state) for i, job_id in enumerate(job_ids)],
            )

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

    def _rows(self, where: str = "", args: tuple[str, ...] = ()) -> list[RunRow]:
        runs = self._conn.execute(f"SELECT * FROM runs {where} ORDER BY created_at, run_id", args)
        rows = [RunRow(**dict(r)) for r in runs.fetchall()]
        for row in rows:
            jobs = self._conn.execute(
                "SELECT task, job_id, state FROM jobs WHERE run_id=? ORDER BY task", (row.run_id,)
            )
            row.jobs = [(r["task"], r["job_id"], r["state"]) for r in jobs.fetchall()]
        return rows

    def get(self, run_id: str) -> RunRow | None:
        rows = self._rows("WHERE run_id=?", (run_id,))
        return rows[0] if rows else None

    def find(self, prefix: str) -> list[RunRow]:
        """Runs whose id equals or starts with `prefix`."""
        exact = self.get(prefix)
        if exact:
            return [exact]
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._rows("WHERE run_id LIKE ? ESCAPE '\\'", (escaped + "%",))

    def all(self) -> list[RunRow]:
        return self._rows()

    def children(self, parent: str) -> list[RunRow]:
        """The runs whose parent is `parent` (a sweep's points, a training run's evaluations)."""
        return self._rows("WHERE parent=?", (parent,))

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


def _statements() -> list[str]:
    return [s.strip() for s in SCHEMA.split(";") if s.strip()]
