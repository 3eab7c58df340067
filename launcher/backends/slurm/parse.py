"""What Slurm's queries answer, parsed: squeue and sacct lines into `SlurmInfo` and run states,
sinfo into partitions and node shapes, and the pending reasons that never resolve by waiting.

Pure: text in, data out (the commands themselves run in `commands`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from launcher.config.duration import duration_seconds
from launcher.runs.state import RunState

SLURM_STATES: dict[str, RunState] = {
    "PENDING": RunState.PENDING,
    "CONFIGURING": RunState.PENDING,
    "POWER_UP_NODE": RunState.PENDING,
    "REQUEUED": RunState.PENDING,
    "REQUEUE_FED": RunState.PENDING,
    "REQUEUE_HOLD": RunState.PENDING,
    "RESV_DEL_HOLD": RunState.PENDING,
    "SPECIAL_EXIT": RunState.PENDING,
    "RUNNING": RunState.RUNNING,
    "COMPLETING": RunState.RUNNING,
    "RESIZING": RunState.RUNNING,
    "SIGNALING": RunState.RUNNING,
    "STAGE_OUT": RunState.RUNNING,
    "COMPLETED": RunState.COMPLETED,
    "FAILED": RunState.FAILED,
    "NODE_FAIL": RunState.FAILED,
    "OUT_OF_MEMORY": RunState.FAILED,
    "BOOT_FAIL": RunState.FAILED,
    "LAUNCH_FAILED": RunState.FAILED,
    "CANCELLED": RunState.CANCELLED,
    "REVOKED": RunState.CANCELLED,
    "TIMEOUT": RunState.TIMEOUT,
    "DEADLINE": RunState.TIMEOUT,
    "PREEMPTED": RunState.PREEMPTED,
    "SUSPENDED": RunState.PREEMPTED,
    "STOPPED": RunState.PREEMPTED,
}
"""Every Slurm job state (sacct and squeue spelling) and what it means here. Requeue states are
pending: the job will run again. Held jobs stay pending until someone releases them."""


def map_state(slurm_state: str) -> RunState:
    """`CANCELLED by 0` -> cancelled; a name not in SLURM_STATES -> unknown."""
    words = slurm_state.split()
    return SLURM_STATES.get(words[0].upper(), RunState.UNKNOWN) if words else RunState.UNKNOWN


_FOLDED = re.compile(r"^(\d+)_\[([^\]]+)\]$")


def expand_job_ids(field: str) -> list[str]:
    """`7_[1-3,5%2]` (pending array tasks folded into one record) -> 7_1 7_2 7_3 7_5; else [field]."""
    m = _FOLDED.match(field.strip())
    if not m:
        return [field.strip()]
    base, ranges = m.group(1), m.group(2).split("%")[0]
    ids: list[str] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        ids += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return ids


@dataclass(frozen=True)
class Attempt:
    """An earlier start of a job that Slurm ran again: how it ended, where, and when."""

    state: str
    nodes: str
    end: str


@dataclass
class SlurmInfo:
    """What the scheduler says about one job (or array task). `earlier`: its starts before this one,
    oldest first (sacct only; squeue knows the count, `restarts`, not the story)."""

    state: str
    reason: str = ""
    exit_code: str = ""
    nodes: str = ""
    restarts: int = 0
    earlier: list[Attempt] = field(default_factory=list)
    end: str = ""

    @property
    def job_state(self) -> RunState:
        return map_state(self.state)


NEVER_STARTS_REASONS: dict[str, str] = {
    "PartitionConfig": "no node of the partition has that many CPUs, GPUs or that much memory",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionTimeLimit": "a longer time than the partition allows",
    "BadConstraints": "no node has the requested features",
    "InvalidAccount": "the account is not valid",
    "InvalidQOS": "the QOS is not valid",
    "DependencyNeverSatisfied": "a job it depends on ended the wrong way",
}
"""Pending reasons that do not resolve by waiting (Slurm's "Job Reason Codes"): the job stays
queued until someone changes it. ReqNodeNotAvail is not here: it ends when the nodes return."""


RESTARTED = frozenset({"REQUEUED", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL"})
"""States of an earlier `sacct -D` record of a job that Slurm then ran again (with --requeue)."""


SACCT_FIELDS = "JobID,State,ExitCode,Reason,NodeList,End"


def parse_sacct(text: str) -> dict[str, SlurmInfo]:
    """`sacct -n -P -X -D -o SACCT_FIELDS` (End may be absent): the latest record per job, with
    restarts = the earlier records that ended in a requeue, kept in `earlier`. An earlier record that
    ended any other way belongs to another job that had the same id (ids restart when Slurm's state
    is reset)."""
    infos: dict[str, SlurmInfo] = {}
    folded: set[str] = set()
    ends: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5 or not fields[0]:
            continue
        job_field, state, exit_code, reason, nodes = fields[:5]
        end = fields[5] if len(fields) > 5 else ""
        if "[" in job_field:
            for job_id in expand_job_ids(job_field):
                if job_id not in infos:
                    infos[job_id] = SlurmInfo(state, reason, exit_code, nodes)
                    folded.add(job_id)
            continue
        earlier = infos.get(job_field)
        requeued = earlier is not None and job_field not in folded and earlier.state in RESTARTED
        history: list[Attempt] = []
        if earlier is not None and requeued:
            history = [*earlier.earlier, Attempt(earlier.state, earlier.nodes, ends.get(job_field, ""))]
        infos[job_field] = SlurmInfo(state, reason, exit_code, nodes, len(history), history, end)
        ends[job_field] = end
        folded.discard(job_field)
    return infos


def parse_squeue(text: str) -> dict[str, SlurmInfo]:
    """`squeue -h -r -t all -O JobArrayID:|,State:|,Reason:|,RestartCnt:|,NodeList:|,exit_code:|`;
    the exit code (a wait status there) becomes sacct's `code:signal`."""
    infos: dict[str, SlurmInfo] = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 4 or not fields[0]:
            continue
        fields += [""] * (6 - len(fields))
        restarts = int(fields[3]) if fields[3].isdigit() else 0
        status = fields[5]
        exit_code = f"{int(status) >> 8}:{int(status) & 0x7F}" if status.isdigit() else ""
        for job_id in expand_job_ids(fields[0]):
            infos[job_id] = SlurmInfo(fields[1], fields[2], exit_code, fields[4], restarts)
    return infos


@dataclass(frozen=True)
class NodeShape:
    """One line of `sinfo`: `count` nodes with these GPUs, CPUs and memory (MB) each."""

    count: int
    gpus: int
    cpus: int
    mem_mb: int


@dataclass
class Partition:
    """One partition as `sinfo` reports it."""

    name: str
    gpu_types: set[str]
    gpus_per_node: int
    nodes: int
    max_seconds: int | None
    shapes: list[NodeShape] = field(default_factory=list)


_GPU_GRES = re.compile(r"(?:^|,)gpu(?::([^:,(]+))?:(\d+)")
SINFO_FORMAT = "%R|%G|%D|%l|%c|%m"


def _leading_int(text: str) -> int | None:
    """`32` or `32+` (sinfo's "at least") -> 32; anything else -> None (not known)."""
    found = re.match(r"\d+", text.strip())
    return int(found.group()) if found else None


def parse_sinfo(text: str) -> dict[str, Partition]:
    """`sinfo -h -o '%R|%G|%D|%l|%c|%m'`: partitions with their GPU types, GPUs per node, nodes,
    time limit and the node shapes (GPUs, CPUs, memory per node). A shape whose CPUs or memory
    sinfo does not give (an older 4-field answer) is not recorded."""
    parts: dict[str, Partition] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4:
            continue
        name, gres, count, limit = fields[:4]
        part = parts.setdefault(name, Partition(name, set(), 0, 0, _limit_seconds(limit)))
        nodes = int(count) if count.isdigit() else 0
        part.nodes += nodes
        gpus = 0
        for gpu_type, found in _GPU_GRES.findall(gres):
            if gpu_type and not gpu_type.isdigit():
                part.gpu_types.add(gpu_type)
            gpus = max(gpus, int(found))
        part.gpus_per_node = max(part.gpus_per_node, gpus)
        cpus, mem = (_leading_int(f) for f in [*fields, "", ""][4:6])
        if cpus is not None and mem is not None:
            part.shapes.append(NodeShape(nodes, gpus, cpus, mem))
    return parts


def _limit_seconds(limit: str) -> int | None:
    try:
        return duration_seconds(limit)
    except ValueError:
        return None  # infinite, n/a
