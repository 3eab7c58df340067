"""One answer of the queue shared by every `launch` process of the user on this machine.

A refresh asks `squeue --me -t all -r` once (every job of the user, so that one answer serves any
process, whatever runs it follows) and, for the ids it no longer lists (jobs that left the queue),
`sacct` once. The answer is kept, with the time it was asked, in
`$LAUNCH_HOME/cache/squeue-<profile>-<host>.json` (written atomically): a process within
`slurm.poll_interval_s` of that time reads it instead of asking, when it holds every id the process
asks about. Asking happens under a lock on the file (`.lock` beside it), and whoever gets the lock
reads the file again first, so ten processes that find it stale together send one query, not ten.
`fresh` (`launch status --fresh`, a cancel waiting for its jobs to end) asks in any case and
shares what it learnt. An interval of 0 shares nothing.
"""

from __future__ import annotations

import fcntl
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from launcher import paths
from launcher.backends.slurm.commands import SlurmRefused
from launcher.backends.slurm.parse import SlurmInfo, parse_sacct, parse_squeue
from launcher.jsonio import atomic_write_json, read_object


@dataclass
class Answer:
    """squeue's and sacct's raw answers and when they were asked (`at`, epoch seconds)."""

    at: float
    squeue: str
    sacct: str = ""
    sacct_ids: list[str] = field(default_factory=list)

    def infos(self) -> dict[str, SlurmInfo]:
        found = parse_sacct(self.sacct)
        found.update(parse_squeue(self.squeue))  # the controller's view wins over accounting's
        return found

    def knows(self, job_ids: Sequence[str], infos: dict[str, SlurmInfo]) -> bool:
        """Whether it answers for every id (sacct asked about those squeue no longer lists)."""
        asked = set(self.sacct_ids)
        return all(j in infos or j in asked for j in job_ids)


def cache_path(profile_name: str) -> Path:
    safe = re.sub(r"[^\w.-]", "_", f"{profile_name}-{socket.gethostname()}")
    return paths.launch_home() / "cache" / f"squeue-{safe}.json"


def _read(path: Path) -> Answer | None:
    data = read_object(path) if path.is_file() else None
    if not data:
        return None
    try:
        return Answer(float(data["at"]), str(data["squeue"]), str(data.get("sacct", "")),
                      [str(j) for j in data.get("sacct_ids", [])])  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` + `.lock`; none where the file system has no locks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        with suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class SharedQueue:
    """The answer of one cluster profile's queries, shared for `interval` seconds (see the module)."""

    def __init__(self, profile_name: str, interval: float) -> None:
        self.path = cache_path(profile_name)
        self.interval = interval

    def _usable(self, job_ids: Sequence[str]) -> dict[str, SlurmInfo] | None:
        answer = _read(self.path)
        if answer is None or not 0 <= time.time() - answer.at < self.interval:
            return None
        infos = with_arrays(job_ids, answer.infos())
        return infos if answer.knows(job_ids, infos) else None

    def infos(
        self,
        job_ids: Sequence[str],
        squeue: Callable[[], str],
        sacct: Callable[[list[str]], str],
        fresh: bool = False,
    ) -> dict[str, SlurmInfo]:
        """What the queue (and, for ids it no longer lists, accounting) says of `job_ids`: a shared
        answer younger than the interval, else one asked now. SlurmSilent when squeue does not answer."""
        if self.interval <= 0:
            return with_arrays(job_ids, _ask(job_ids, squeue, sacct).infos())
        if not fresh and (found := self._usable(job_ids)) is not None:
            return found
        with _locked(self.path):
            if not fresh and (found := self._usable(job_ids)) is not None:
                return found  # another process asked while this one waited for the lock
            answer = _ask(job_ids, squeue, sacct)
            atomic_write_json(self.path, {"at": answer.at, "squeue": answer.squeue, "sacct": answer.sacct,
                                          "sacct_ids": answer.sacct_ids}, indent=None)  # fmt: skip
        return with_arrays(job_ids, answer.infos())


def with_arrays(job_ids: Sequence[str], infos: dict[str, SlurmInfo]) -> dict[str, SlurmInfo]:
    """`infos` with each asked array task `<A>_<i>` that is not listed by itself answered by its
    array's own record `<A>`: an array cancelled (or ended) before its tasks started is one line,
    `A CANCELLED`, in squeue and sacct alike."""
    for job_id in job_ids:
        base, sep, _ = job_id.partition("_")
        if sep and job_id not in infos and base in infos:
            infos[job_id] = infos[base]
    return infos


def _ask(job_ids: Sequence[str], squeue: Callable[[], str], sacct: Callable[[list[str]], str]) -> Answer:
    at = time.time()
    answer = Answer(at, squeue())
    listed = with_arrays(job_ids, parse_squeue(answer.squeue))
    missing = [j for j in dict.fromkeys(job_ids) if j not in listed]
    if missing:
        try:
            answer.sacct = sacct(missing)
        except SlurmRefused:  # accounting disabled: those jobs stay unknown
            answer.sacct = ""
        answer.sacct_ids = missing
    return answer
