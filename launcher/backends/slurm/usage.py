"""GPU-hours a run's Slurm jobs used, from accounting: every start's elapsed time x its allocated GPUs.

One `sacct -n -P -X -D -o JobID,State,ElapsedRaw,AllocTRES` for all the runs asked about: `-D` gives
each start of a requeued job its own record (the earlier ones in a requeue state), and AllocTRES
says what each start held (`gres/gpu=N`, whatever the GPU type).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from launcher.backends.slurm.commands import call
from launcher.backends.slurm.parse import RESTARTED
from launcher.runs.cost import Used

USAGE_FIELDS = "JobID,State,ElapsedRaw,AllocTRES"
LIVE = frozenset({"RUNNING", "PENDING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING", "CONFIGURING"})
"""States of a record whose ElapsedRaw still grows (or whose job starts again)."""

_GPU_ANY = re.compile(r"(?:^|,)gres/gpu=(\d+)")
_GPU_TYPED = re.compile(r"(?:^|,)gres/gpu:[^=,]+=(\d+)")


def tres_gpus(tres: str) -> int:
    """GPUs in an AllocTRES string: `gres/gpu=N`, else the sum of its typed `gres/gpu:TYPE=N`."""
    found = _GPU_ANY.search(tres)
    if found:
        return int(found.group(1))
    return sum(int(n) for n in _GPU_TYPED.findall(tres))


def parse_usage(text: str) -> dict[str, Used]:
    """`sacct -n -P -X -D -o USAGE_FIELDS` -> {job id: GPU-hours of all its starts}. The records of
    one id are summed while the earlier ones ended in a requeue (parse.RESTARTED); an earlier record
    that ended any other way was another job with the same id (ids restart after a reset), so it is
    dropped. A pending array's `123_[0-9]` record held nothing."""
    seconds: dict[str, float] = {}
    last: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4 or not fields[0] or "[" in fields[0]:
            continue
        job_id, state, elapsed, tres = fields[:4]
        state = state.split()[0] if state else ""  # `CANCELLED by 1000`
        held = int(elapsed) * tres_gpus(tres) if elapsed.isdigit() else 0
        if job_id in last and last[job_id] not in RESTARTED:
            seconds[job_id] = 0.0
        seconds[job_id] = seconds.get(job_id, 0.0) + held
        last[job_id] = state
    return {j: Used(s / 3600, last[j] not in LIVE) for j, s in seconds.items()}


def gpu_hours(runs: Sequence[tuple[Path, Sequence[str]]]) -> list[Used | None]:
    """Each run's jobs summed, from one sacct query (SlurmRefused/SlurmSilent when it cannot answer);
    None for a run whose jobs accounting does not know (yet)."""
    ids = [j for _, jobs in runs for j in jobs]
    if not ids:
        return [None] * len(runs)
    bases = ",".join(dict.fromkeys(j.split("_")[0] for j in ids))
    found = parse_usage(call(["sacct", "-n", "-P", "-X", "-D", "-o", USAGE_FIELDS, "-j", bases], "sacct"))
    out: list[Used | None] = []
    for _, jobs in runs:
        used = [found[j] for j in jobs if j in found]
        whole = len(used) == len(jobs) and bool(jobs)
        out.append(Used(sum(u.hours for u in used), all(u.final for u in used)) if whole else None)
    return out
