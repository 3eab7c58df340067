"""Local arrays with more runs than may run at once: one runner process starts each run's
supervisor as a slot frees, in order; a queued run has no process of its own.

`submit` (from `LocalBackend.submit_array`) writes the array's manifest
(`$LAUNCH_HOME/local/arrays/<token>.json`: each run's directory, supervisor arguments and code
variables), starts the runner (`python -m launcher.backends.local_array --manifest M`, its own
session, the environment and code a supervisor gets), writes every run's record and then closes
the runner's stdin: the runner starts nothing before that, or before the submitting process died
(then `find_submitted` records the runs of a live runner: a queued run of a started runner counts
as submitted).

A run's job id is `<runner PID@START>#<index>`. Its record, `$LAUNCH_HOME/local/<job id>.json`,
holds {"run_dir", "boot"} and, written under the array's lock (`<runner>.lock`), either
"supervisor": the id of the supervisor the runner started for it, exactly as `submit` starts one
(from then on status, explain, cancel and logs answer as for that supervisor's id); or
"cancelling": `launch cancel` took it off the queue (the runner skips it); or "skipped": why the
runner did not start it. A run not started is pending while the runner lives and failed, saying
so, once the runner is gone (killed).

The runner holds at most `cap` runs at once; a slot is held while any process of its run lives
(the supervisor, or the job's process group), as Slurm's `%P`; each supervisor then queues for its
GPUs like any other. It exits once it has started or skipped every run. It imports no more than
this module needs: SUPERVISOR_MB and RUNNER_MB are what the processes weigh (`cost_text`).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from launcher import paths
from launcher.backends.procs import Proc
from launcher.jsonio import atomic_write_json

STATE_FILE = ".local_state.json"
CODE_KEYS = ("PYTHONPATH", "PYTHONSAFEPATH", "LAUNCH_CODE")
POLL_S = 0.25

SUPERVISOR_MB = 35
"""Resident memory of one supervisor (VmRSS, 21 MB of it anonymous, the rest shared library pages),
waiting or running its job, measured with Python 3.11 on Linux x86-64 (issue 26 item 11)."""
RUNNER_MB = 21
"""Resident memory of an array's runner, measured the same way with 1,000 queued runs."""
RUNNER_KB_PER_RUN = 0.2
"""What each queued run adds to the runner (its manifest entry: 25 MB with 20,000 runs)."""
LARGE = 16
"""Arrays of more runs than this get their cost stated in a dry run."""


def state_dir() -> Path:
    path = paths.launch_home() / "local"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge_json(path: Path, **changes: object) -> None:
    """Merge `changes` into a JSON file; a directory that was deleted meanwhile is not an error."""
    data = read_json(path)
    data.update(changes)
    with suppress(FileNotFoundError):
        atomic_write_json(path, data)


def code_env(env: Mapping[str, str]) -> dict[str, str]:
    """The job's code variables (PYTHONPATH, PYTHONSAFEPATH, LAUNCH_CODE): the supervisor runs the
    launcher of the snapshot its job runs."""
    return {k: v for k, v in env.items() if k in CODE_KEYS}


def start_supervisor(
    run_dir: Path, args: Sequence[str], env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], Proc]:
    """A run's supervisor (`python -m launcher.backends.local --run-dir RUN_DIR ARGS`), in its own
    session, its output in logs/supervisor.log, and its record under the supervisor's id."""
    atomic_write_json(run_dir / STATE_FILE, {"state": "pending"})
    cmd = [sys.executable, "-m", "launcher.backends.local", "--run-dir", str(run_dir), *args]
    with open(run_dir / "logs" / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            cmd, cwd=run_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, env=dict(env),
        )  # fmt: skip
    supervisor = Proc.of(proc.pid)
    atomic_write_json(state_dir() / f"{supervisor}.json", {"run_dir": str(run_dir), "boot": supervisor.boot})
    return proc, supervisor


@dataclass(frozen=True)
class ArrayRun:
    """One run of an array: its directory, the supervisor's arguments after it, its code variables."""

    run_dir: Path
    args: tuple[str, ...]
    code: dict[str, str]


def cost_text(runs: int, cap: int) -> str | None:
    """The processes and memory a local array of `runs` runs, `cap` at once, takes at most (two
    comment lines); None for a small one."""
    if runs <= LARGE:
        return None
    measured = "measured with Python 3.11 on Linux"
    if cap >= runs:
        return (
            f"# this machine: {runs} supervisor processes at once (one per run)\n"
            f"# memory: about {runs * SUPERVISOR_MB:,} MB resident ({SUPERVISOR_MB} MB a supervisor, "
            f"{measured}), besides what the jobs use"
        )
    runner = round(RUNNER_MB + runs * RUNNER_KB_PER_RUN / 1024)
    return (
        f"# this machine: at most {cap + 1} processes: {cap} supervisor(s), and one runner that starts "
        f"the other {runs - cap} runs in order as slots free (a queued run has no process)\n"
        f"# memory: about {cap * SUPERVISOR_MB + runner:,} MB resident at most ({SUPERVISOR_MB} MB a "
        f"supervisor, {runner} MB the runner, {measured}), besides what the jobs use"
    )


# ---------------------------------------------------------------- submit, and the ids it hands out


def submit(runs: Sequence[ArrayRun], cap: int) -> list[str]:
    """Start the runner of `runs` (at most `cap` at once); one job id per run, in order."""
    folder = state_dir() / "arrays"
    folder.mkdir(exist_ok=True)
    token = secrets.token_hex(6)
    manifest = folder / f"{token}.json"
    args = list(dict.fromkeys(r.args for r in runs))
    codes = list(dict.fromkeys(json.dumps(r.code, sort_keys=True) for r in runs))
    atomic_write_json(manifest, {
        "cap": cap, "base": {k: os.environ.get(k) for k in CODE_KEYS},
        "args": [list(a) for a in args], "codes": [json.loads(c) for c in codes],
        "runs": [[str(r.run_dir), args.index(r.args), codes.index(json.dumps(r.code, sort_keys=True))]
                 for r in runs],
    }, indent=None)  # fmt: skip
    env = {**os.environ, **runs[0].code, "LAUNCH_HOME": str(paths.launch_home())}
    cmd = [sys.executable, "-m", "launcher.backends.local_array", "--manifest", str(manifest)]
    with open(folder / f"{token}.log", "ab") as log:
        proc = subprocess.Popen(
            cmd, cwd=folder, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True, env=env
        )  # fmt: skip
    runner = Proc.of(proc.pid)
    assert proc.stdin is not None
    try:
        reason = f"array limit: {cap} of {cap} runs at once"
        job_ids = []
        for index, run in enumerate(runs):
            job_id = f"{runner}#{index}"
            atomic_write_json(run.run_dir / STATE_FILE, {"state": "pending", "reason": reason})
            merge_json(state_dir() / f"{job_id}.json", run_dir=str(run.run_dir), boot=runner.boot)
            job_ids.append(job_id)
    except Exception:
        runner.signal_group(signal.SIGKILL)  # an error: nothing was submitted (a signal: it was)
        raise
    proc.stdin.close()  # the runner may start
    return job_ids


@dataclass(frozen=True)
class Member:
    """A run of an array, named by its job id."""

    runner: Proc
    index: int

    @classmethod
    def parse(cls, job_id: str) -> Member | None:
        """The array run `job_id` names; None for another id (a supervisor's, a follow-on's)."""
        runner, sep, index = job_id.partition("#")
        if not sep:
            return None
        try:
            return cls(Proc.parse(runner, read_json(state_dir() / f"{job_id}.json").get("boot")), int(index))
        except ValueError:
            return None

    @property
    def job_id(self) -> str:
        return f"{self.runner}#{self.index}"

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.job_id}.json"

    def record(self) -> dict[str, Any]:
        return read_json(self.path)

    def run_dir(self) -> Path | None:
        run_dir = self.record().get("run_dir")
        return Path(run_dir) if isinstance(run_dir, str) else None

    def supervisor(self) -> str | None:
        """The id of the supervisor started for it; None while it is queued (or was never started).
        After the runner was killed, a run it recorded nothing for is looked for once among the live
        supervisors (killed between starting one and recording it), else recorded as never started."""
        record = self.record()
        if isinstance(record.get("supervisor"), str):
            return str(record["supervisor"])
        if record.get("cancelling") or record.get("skipped") or self.runner.alive():
            return None
        run_dir = str(record.get("run_dir"))
        found = supervisors({run_dir}) if run_dir in _found_after(self.runner) else {}
        if found:
            merge_json(self.path, supervisor=found[run_dir])
        else:
            merge_json(self.path, skipped=f"its array's runner (process {self.runner.pid}) ended before "
                       "starting it (killed?)")  # fmt: skip
        return found.get(run_dir)

    def queued(self) -> tuple[str, str | None]:
        """(state, reason) of a run `supervisor()` found none for: cancelled when it was taken off
        the queue, failed when it was skipped (or the runner is gone), else pending."""
        record = self.record()
        run_dir = self.run_dir()
        recorded = read_json(run_dir / STATE_FILE) if run_dir is not None else {}
        if record.get("cancelling"):
            return "cancelled", "cancelled before it started"
        if record.get("skipped"):
            return "failed", f"never started: {record['skipped']}"
        return "pending", recorded.get("reason")

    def take_off_queue(self) -> str | None:
        """Cancel it if it is still queued (the runner will skip it); the supervisor's id when it
        had been started already."""
        with _lock(self.runner):
            supervisor = self.supervisor()
            if supervisor is not None:
                return supervisor
            merge_json(self.path, cancelling=True)
        run_dir = self.run_dir()
        if run_dir is not None:
            merge_json(run_dir / STATE_FILE, state="cancelled", cancelling=True, ended=time.time(),
                       reason="cancelled before it started")  # fmt: skip
        return None


@contextmanager
def _lock(runner: Proc) -> Iterator[None]:
    """The array's lock: the runner starting a run and `launch cancel` taking it off the queue."""
    fd = os.open(state_dir() / f"{runner}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _cmdlines() -> Iterator[tuple[int, list[str]]]:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError, ValueError):  # a process that ended meanwhile
            yield int(cmdline.parent.name), cmdline.read_bytes().decode(errors="replace").split("\0")


def _supervisor_pids() -> dict[str, int]:
    """{run directory: PID} of the live supervisors (their command lines name the directory)."""
    found = {}
    for pid, words in _cmdlines():
        if "launcher.backends.local" in words and "--run-dir" in words[:-1]:
            found[words[words.index("--run-dir") + 1]] = pid
    return found


def supervisors(run_dirs: set[str]) -> dict[str, str]:
    """{run directory: supervisor id} of the live supervisors started for `run_dirs`, each recorded
    under its id."""
    found = {}
    for run_dir, pid in _supervisor_pids().items():
        if run_dir in run_dirs:
            supervisor = Proc.of(pid)
            merge_json(state_dir() / f"{supervisor}.json", run_dir=run_dir, boot=supervisor.boot)
            found[run_dir] = str(supervisor)
    return found


@cache
def _found_after(runner: Proc) -> dict[str, int]:
    """The live supervisors after `runner` died, looked for once per runner (it starts no more)."""
    return _supervisor_pids()


def queued_members(run_dirs: set[str]) -> dict[str, str]:
    """{run directory: job id} of the runs of live runners (read from their manifests), each
    recorded under its id: a run of a started runner was submitted, started or not."""
    found = {}
    for pid, words in _cmdlines():
        if "launcher.backends.local_array" in words and "--manifest" in words[:-1]:
            manifest = read_json(Path(words[words.index("--manifest") + 1]))
            runner = Proc.of(pid)
            for index, run in enumerate(manifest.get("runs") or []):
                if run[0] in run_dirs:
                    job_id = f"{runner}#{index}"
                    merge_json(state_dir() / f"{job_id}.json", run_dir=run[0], boot=runner.boot)
                    found[run[0]] = job_id
    return found


# ---------------------------------------------------------------- the runner process


@dataclass(frozen=True)
class _Started:
    popen: subprocess.Popen[bytes]
    supervisor: Proc

    def alive(self) -> bool:
        """The run holds its slot: its supervisor lives, or processes of its job do."""
        if self.popen.poll() is None:
            return True
        job = Proc.from_json(read_json(state_dir() / f"{self.supervisor}.job.json").get("job"))
        return job is not None and bool(job.group_members())


def _start(me: Proc, index: int, run_dir: Path, args: list[str], env: dict[str, str]) -> _Started | None:
    """Start run `index` unless it was cancelled or cannot start (recorded as skipped)."""
    path = state_dir() / f"{me}#{index}.json"
    with _lock(me):
        record = read_json(path)
        if record.get("cancelling"):
            return None
        skipped = None if run_dir.is_dir() else f"its run directory {run_dir} is gone"
        if skipped is None:
            try:
                popen, supervisor = start_supervisor(run_dir, args, env)
            except OSError as err:
                skipped = f"its supervisor could not be started: {err}"
        if skipped is not None:
            merge_json(path, run_dir=str(run_dir), boot=me.boot, skipped=skipped)
            print(f"run {index} ({run_dir}): {skipped}", flush=True)
            return None
        merge_json(path, run_dir=str(run_dir), boot=me.boot, supervisor=str(supervisor))
    return _Started(popen, supervisor)


def run_array(manifest_path: Path) -> int:
    """Start the manifest's runs in order, at most `cap` holding a slot at once; return when every
    one was started or skipped."""
    me = Proc.me()
    sys.stdin.buffer.read()  # until the submit has recorded every run (or died)
    manifest = read_json(manifest_path)
    cap = max(1, int(manifest.get("cap") or 1))
    base = {k: v for k, v in os.environ.items() if k not in CODE_KEYS}
    base.update({k: v for k, v in (manifest.get("base") or {}).items() if isinstance(v, str)})
    active: list[_Started] = []
    for index, (run_dir, args_at, code_at) in enumerate(manifest.get("runs") or []):
        while True:
            active = [s for s in active if s.alive()]
            if len(active) < cap:
                break
            time.sleep(POLL_S)
        env = {**base, **manifest["codes"][code_at]}
        started = _start(me, index, Path(run_dir), manifest["args"][args_at], env)
        if started is not None:
            active.append(started)
    manifest_path.unlink(missing_ok=True)
    (state_dir() / f"{me}.lock").unlink(missing_ok=True)  # every run is recorded: nothing to guard
    log = manifest_path.with_suffix(".log")
    if log.exists() and not log.stat().st_size:
        log.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="recipe-launcher local array runner")
    parser.add_argument("--manifest", type=Path, required=True)
    return run_array(parser.parse_args(argv).manifest)


if __name__ == "__main__":
    sys.exit(main())
