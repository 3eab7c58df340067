"""Why a start of a job ended: the requeues and lost nodes of its history, in words.

A node that fails under a job ends it NODE_FAIL. slurmdbd keeps every node state change with its
reason (`sacctmgr show event`), also after the node came back (ReturnToService=2 returns a node as
soon as its slurmd answers again), so the node and the reason are found long after; without
accounting, `sinfo -R` says which of the job's nodes are down now, and why.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

from launcher.backends.slurm.commands import SlurmRefused, SlurmSilent
from launcher.backends.slurm.commands import call as _call
from launcher.backends.slurm.parse import Attempt

WINDOW_BEFORE = timedelta(minutes=2)
WINDOW_AFTER = timedelta(minutes=1)
"""A node event counts for a start that ended NODE_FAIL when it began this close to that end."""
_BAD = ("DOWN", "FAIL", "DRAIN", "NOT_RESPONDING")

CAUSES = {
    "REQUEUED": "requeued (USR2 or scontrol requeue)",
    "PREEMPTED": "preempted",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node boot failure",
}


def node_events(nodes: str, end: str) -> str | None:
    """`dev-n2 DOWN: <reason>` for the nodes of host list `nodes` that went bad within minutes of `end`
    (sacct's End), each node's event nearest to it; else those down now (`sinfo -R`); None when
    Slurm cannot say."""
    with suppress(SlurmRefused, SlurmSilent, ValueError):
        at = datetime.fromisoformat(end)
        out = _call(
            ["sacctmgr", "-n", "-P", "show", "event", f"nodes={nodes}",
             f"start={(at - WINDOW_BEFORE).isoformat(timespec='seconds')}",
             f"end={(at + WINDOW_AFTER).isoformat(timespec='seconds')}",
             "format=NodeName,TimeStart,State,Reason"],
            "sacctmgr",
        )  # fmt: skip
        found = _events(out, at)
        if found:
            return found
    with suppress(SlurmRefused, SlurmSilent):
        return _events(_call(["sinfo", "-h", "-R", "-n", nodes, "-o", "%N|%H|%T|%E"], "sinfo"))
    return None


def _events(out: str, near: datetime | None = None) -> str | None:
    """`NODE|START|STATE|REASON` lines -> `NODE STATE: REASON; ...` for the bad states, each node once:
    its event nearest to `near` (else its last)."""
    best: dict[str, tuple[float, str]] = {}
    for line in out.splitlines():
        node, start, state, reason = ([*line.split("|", 3), "", "", ""])[:4]
        if not node or not any(bad in state.upper() for bad in _BAD):
            continue
        distance = 0.0
        if near is not None:
            try:
                distance = abs((datetime.fromisoformat(start) - near).total_seconds())
            except ValueError:
                distance = float("inf")
        if node not in best or distance <= best[node][0]:
            best[node] = (distance, f"{node} {state.upper()}" + (f": {reason}" if reason else ""))
    return "; ".join(text for _, text in best.values()) or None


def history_text(earlier: list[Attempt]) -> str:
    """`after node failure (dev-n2 DOWN: lost) on dev-n[1-2], requeued (USR2 ...)`: each earlier start's
    end, oldest first; the node events of a NODE_FAIL are looked up."""
    parts = []
    for attempt in earlier:
        cause = CAUSES.get(attempt.state, attempt.state)
        if attempt.state in ("NODE_FAIL", "BOOT_FAIL"):
            events = node_events(attempt.nodes, attempt.end) if attempt.nodes else None
            cause += f" ({events})" if events else f" on {attempt.nodes or '?'}"
        parts.append(cause)
    return "after " + ", ".join(parts) if parts else ""
