"""What a Slurm cluster lets one user submit, and how a large submission is split into arrays that fit.

`MaxArraySize` (`scontrol show config`: an array's indices run 0 to MaxArraySize - 1; 1001 is Slurm's
default) bounds one array; `MaxSubmitJobs` bounds the jobs a user may have in the queue at once, where
every task of an array counts as one job (Slurm's job array documentation), so splitting cannot help
with it: a submission that does not fit beside the user's queued jobs is refused before anything is
created. It is the least of the user's association's MaxSubmitJobs and GrpSubmitJobs (sacctmgr) and
the QOS's MaxSubmitJobsPerUser (the profile's `slurm.qos`, else the association's default QOS).

Both are read once an hour per cluster profile and cached in `$LAUNCH_HOME/cache/slurm-limits-<profile>.json`;
a dry run reads the cache, else asks scontrol and sacctmgr without writing it, else assumes Slurm's
default (and says so).

`--max-parallel` across the arrays (`plan_arrays`): when everything may run at once the arrays are
independent. Otherwise each array is throttled with `%P` and starts after the one before it ended
(`--dependency=afterany:<previous array>`): exactly one array runs at a time, so never more than P
tasks run, whatever the number of arrays, and Slurm itself keeps the throttle (no process of ours
has to stay alive). The cost is the tail of each array (fewer than P tasks running while its last
ones finish), once per 1,001 tasks. Splitting P among arrays running side by side would waste more
(an array that finishes early leaves its share idle) and cannot give each of more arrays than P a
slot; `aftercorr` would stop task i of the next array for ever when task i of this one fails.
"""

from __future__ import annotations

import getpass
import re
import time
from dataclasses import dataclass
from pathlib import Path

from launcher import paths
from launcher.backends.slurm.commands import SlurmRefused, SlurmSilent, call
from launcher.jsonio import atomic_write_json, read_object

SLURM_DEFAULT_ARRAY_SIZE = 1001
CACHE_TTL_S = 3600.0


@dataclass(frozen=True)
class Limits:
    """`max_array_size`: tasks in one array; `max_submit_jobs`: jobs the user may have queued (None:
    no limit), `submit_limit_by` what sets it; `source`: where the numbers come from, for --dry-run."""

    max_array_size: int = SLURM_DEFAULT_ARRAY_SIZE
    max_submit_jobs: int | None = None
    submit_limit_by: str = ""
    source: str = "Slurm's default (not read from this cluster)"


@dataclass(frozen=True)
class ArrayPart:
    """Tasks `start` to `stop - 1` of a submission as one array, at most `parallel` at once;
    `after_previous`: it starts once the array before it ended."""

    start: int
    stop: int
    parallel: int
    after_previous: bool

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_arrays(count: int, max_array_size: int, max_parallel: int) -> list[ArrayPart]:
    """`count` tasks as arrays of at most `max_array_size`, chained when `max_parallel` throttles
    (see the module docstring)."""
    if count < 1:
        return []
    size = max(1, max_array_size)
    chained = max_parallel < count
    parts = []
    for index, start in enumerate(range(0, count, size)):
        stop = min(start + size, count)
        parallel = max(1, min(max_parallel, stop - start))
        parts.append(ArrayPart(start, stop, parallel, chained and index > 0))
    return parts


def parse_config(text: str) -> dict[str, str]:
    """`scontrol show config`'s `Key = value` lines."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            found[key.strip()] = value.strip()
    return found


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_submit_limit(assoc: str, qos: str, qos_name: str | None) -> tuple[int | None, str]:
    """The least submit limit and what sets it, from `sacctmgr -n -P show assoc where user=U
    format=MaxSubmitJobs,GrpSubmitJobs,DefaultQOS` (`assoc`) and `sacctmgr -n -P show qos
    format=Name,MaxSubmitJobsPerUser` (`qos`); the QOS is `qos_name`, else the association's default,
    else `normal`. (None, "") when nothing limits it."""
    limits: list[tuple[int, str]] = []
    default_qos = ""
    for line in assoc.splitlines():
        fields = [*line.split("|"), "", "", ""][:3]
        for value, name in zip(
            fields[:2], ("association MaxSubmitJobs", "association GrpSubmitJobs"), strict=True
        ):
            n = _number(value)
            if n is not None:
                limits.append((n, name))
        default_qos = default_qos or fields[2].strip()
    wanted = qos_name or default_qos or "normal"
    for line in qos.splitlines():
        name, _, value = line.partition("|")
        n = _number(value.split("|")[0])
        if name.strip() == wanted and n is not None:
            limits.append((n, f"QOS {wanted} MaxSubmitJobsPerUser"))
    if not limits:
        return None, ""
    return min(limits)


def cache_path(profile_name: str) -> Path:
    safe = re.sub(r"[^\w.-]", "_", profile_name)
    return paths.launch_home() / "cache" / f"slurm-limits-{safe}.json"


def _query(qos_name: str | None) -> Limits:
    config = parse_config(call(["scontrol", "show", "config"], "scontrol"))
    size = _number(config.get("MaxArraySize", "")) or SLURM_DEFAULT_ARRAY_SIZE
    user = getpass.getuser()
    try:
        assoc = call(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}",
                      "format=MaxSubmitJobs,GrpSubmitJobs,DefaultQOS"], "sacctmgr")  # fmt: skip
        qos = call(["sacctmgr", "-n", "-P", "show", "qos", "format=Name,MaxSubmitJobsPerUser"], "sacctmgr")
    except SlurmRefused:  # no accounting database: no association or QOS limits either
        assoc = qos = ""
    most, by = parse_submit_limit(assoc, qos, qos_name)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return Limits(size, most, by, f"read from scontrol and sacctmgr at {stamp}")


def read(profile_name: str, qos_name: str | None, *, dry_run: bool = False) -> Limits:
    """The cluster's limits: the cache when younger than CACHE_TTL_S, else asked (and cached, except
    on a dry run; a dry run without an answer assumes Slurm's defaults)."""
    path = cache_path(profile_name)
    data = read_object(path) if path.is_file() else None
    if data and time.time() - float(data.get("at", 0)) < CACHE_TTL_S and data.get("qos") == qos_name:
        return Limits(int(data["max_array_size"]), data.get("max_submit_jobs"),
                      str(data.get("submit_limit_by", "")), str(data.get("source", "")))  # fmt: skip
    try:
        limits = _query(qos_name)
    except (SlurmRefused, SlurmSilent):
        if dry_run:
            return Limits()
        raise
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {
            "at": time.time(), "qos": qos_name, "max_array_size": limits.max_array_size,
            "max_submit_jobs": limits.max_submit_jobs, "submit_limit_by": limits.submit_limit_by,
            "source": limits.source,
        })  # fmt: skip
    return limits


def queued_jobs() -> int:
    """The user's jobs in the queue that count against MaxSubmitJobs (each array task one)."""
    out = call(["squeue", "-h", "-r", "--me", "-t", "PENDING,RUNNING,SUSPENDED,COMPLETING", "-o", "%i"],
               "squeue")  # fmt: skip
    return sum(1 for line in out.splitlines() if line.strip())
