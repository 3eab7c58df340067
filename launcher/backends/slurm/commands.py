"""Running Slurm's commands: a short timeout for queries, the whole process group killed when it
passes, one error line for a missing, silent or refusing command, and sbatch's answer parsed strictly.

Queries (squeue, sacct, sinfo) may take $LAUNCH_SLURM_TIMEOUT seconds (10 by default: `launch
status` must not stall on a hung controller); sbatch and scancel get SUBMIT_TIMEOUT, since giving up
on them early leaves a job whose fate is unknown.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

from launcher.errors import UserError

QUERY_TIMEOUT_ENV = "LAUNCH_SLURM_TIMEOUT"
QUERY_TIMEOUT = 10.0
SUBMIT_TIMEOUT = 60.0


class SlurmSilent(UserError):
    """A Slurm command is missing or did not answer within its timeout (the environment: exit 1)."""

    exit_code = 1


class SlurmRefused(UserError):
    """A Slurm command answered with an error (mostly about the request: exit 2)."""


class SlurmGarbled(UserError):
    """A Slurm command answered with something that is not what it documents (exit 1)."""

    exit_code = 1


def query_timeout() -> float:
    """$LAUNCH_SLURM_TIMEOUT seconds, else QUERY_TIMEOUT; a bad value is a UserError."""
    text = os.environ.get(QUERY_TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else QUERY_TIMEOUT
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UserError(f"${QUERY_TIMEOUT_ENV}: '{text}' is not a number of seconds; valid: e.g. 10")
    return value


def run(
    cmd: list[str], what: str, cwd: Path | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a Slurm command in its own process group, killed whole after `timeout` seconds (a site's
    wrapper script may leave children that hold the pipes open); SlurmSilent when it cannot answer."""
    limit = query_timeout() if timeout is None else timeout
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            cwd=cwd, start_new_session=True,
        )  # fmt: skip
    except OSError as err:
        raise SlurmSilent(
            f"{what} could not run ({err.strerror or err}): is this a Slurm login node? "
            "(for the test cluster: bash cluster/dev/slurm-up.sh)"
        ) from None
    try:
        out, errors = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SlurmSilent(f"Slurm did not answer in {limit:g} s ({what})") from None
    except BaseException:  # a signal (SIGTERM, Ctrl-C): nothing of it may go on behind our back
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, errors)


def call(cmd: list[str], what: str, cwd: Path | None = None, timeout: float | None = None) -> str:
    """stdout of a Slurm command; a missing, silent or failing command is one UserError line."""
    proc = run(cmd, what, cwd, timeout)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit code {proc.returncode}"]
        raise SlurmRefused(f"{what} refused: {lines[-1]}")
    return proc.stdout


_SBATCH_ID = re.compile(r"^(\d+)(?:;[\w.-]+)?$")


def parse_sbatch(out: str) -> str:
    """`sbatch --parsable`'s answer `ID` or `ID;CLUSTER` -> ID; anything else is a UserError."""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    found = _SBATCH_ID.match(lines[-1]) if lines else None
    if found is None:
        shown = lines[-1][:80] if lines else "nothing"
        raise SlurmGarbled(
            f"sbatch answered without a job id ('{shown}'); whether a job was queued is unknown: "
            "check `squeue --me`"
        )
    return found.group(1)
