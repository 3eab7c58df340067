"""Processes named so that a reused PID is never taken for them: PID + start time + boot id.

The start time is field 22 of /proc/<pid>/stat (clock ticks since boot), the boot id is
/proc/sys/kernel/random/boot_id; together they name one process for the life of the machine, which
is what psutil's `Process.is_running()` checks (read here directly: one file per process, and the
process-group scan below has no psutil equivalent that is cheaper than reading the same files).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

GRACE_S = float(os.environ.get("LAUNCH_KILL_GRACE_S") or 15)
"""Seconds between SIGTERM and SIGKILL, for cancel and for the time limit alike: Slurm's KillWait
(30 s by default there), which $LAUNCH_KILL_GRACE_S sets here."""


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], pgid [2], start [19])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


@dataclass(frozen=True)
class Proc:
    """One process: `start` None means unknown (a legacy bare-PID job id), matched by PID only."""

    pid: int
    start: int | None = None
    boot: str | None = None

    @classmethod
    def me(cls) -> Proc:
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> Proc:
        return cls(pid, start_ticks(pid), boot_id())

    @classmethod
    def parse(cls, text: str, boot: str | None = None) -> Proc:
        """`PID@START` (or a bare legacy `PID`); raises ValueError on anything else."""
        pid, _, start = str(text).partition("@")
        return cls(int(pid), int(start) if start else None, boot)

    def __str__(self) -> str:
        return f"{self.pid}@{self.start}" if self.start is not None else str(self.pid)

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "start": self.start, "boot": self.boot}

    @classmethod
    def from_json(cls, data: object) -> Proc | None:
        if isinstance(data, int):  # a table written before start times were recorded
            return cls(data)
        if isinstance(data, dict) and isinstance(data.get("pid"), int):
            return cls(data["pid"], data.get("start"), data.get("boot"))
        return None

    def alive(self) -> bool:
        """This very process still runs (not a zombie, not another process with its PID)."""
        if self.boot and self.boot != boot_id():
            return False
        fields = _stat(self.pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return self.start is None or int(fields[19]) == self.start

    def group_members(self) -> list[int]:
        """Live processes of the process group this process leads (it may be gone itself).

        A PID stays allocated while a group of that number exists, so a group whose leader number
        now belongs to another process (different start time) is not this one's group."""
        if self.boot and self.boot != boot_id():
            return []
        leader = _stat(self.pid)
        if leader is not None and self.start is not None and int(leader[19]) != self.start:
            return []
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields and int(fields[2]) == self.pid and fields[0] not in ("Z", "X"):
                    members.append(int(entry.name))
        return members

    def signal_group(self, signum: int) -> bool:
        """Signal the group this process leads, if it is still this process's group."""
        if not self.group_members():
            return False
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)
            return True
        return False


def kill_groups(groups: list[Proc], grace: float = GRACE_S, term: bool = True) -> None:
    """SIGTERM every group (unless `term` is False: already done), wait up to `grace` seconds for
    all of them to end, then SIGKILL what is left."""
    if term:
        for group in groups:
            group.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(g.group_members() for g in groups):
        time.sleep(0.1)
    for group in groups:
        group.signal_group(signal.SIGKILL)
