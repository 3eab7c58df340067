"""Local backend: jobs as detached process groups on this machine, GPUs handed out FIFO.

`submit` starts a supervisor (`python -m launcher.backends.local`) in a new session. The supervisor
waits in a FIFO queue until enough of this machine's GPUs are free, sets CUDA_VISIBLE_DEVICES,
runs the run's submit.sh in its own process group with its output in logs/, enforces the time
limit (SIGTERM, then SIGKILL of the group after `procs.GRACE_S`), and records the outcome in
`<run_dir>/.local_state.json`. The job dies with its supervisor (PR_SET_PDEATHSIG); a process the
job started that outlives both keeps the run `running` and its GPUs held until `launch cancel`.
The supervisor runs in the run directory with the job's code on its PYTHONPATH (the run's snapshot,
launcher.runs.code), so a queued run's supervisor and job never read the checkout; submit.sh `cd`s
into the submitting working directory.

Processes are named by PID + start time + boot id (`procs.Proc`), so a reused PID is never taken
for a run's process. The job id is the supervisor's `PID@START` (a bare `PID` from older versions
is matched by PID only). An array with more runs than may run at once gets one runner process
instead, which starts each run's supervisor as a slot frees (`local_array`: a queued run has no
process; its job id is `RUNNER#INDEX`, which answers as its supervisor's id once it started).
The GPU table is one per machine, shared by every user and every $LAUNCH_HOME
(`$LAUNCH_GPU_TABLE`, default /tmp/recipe-launcher-gpus), like one Slurm node's GRES.

A follow-on job (`submit_after`: a run's `--then` chain) is one detached process, no supervisor, no
GPU, started at once; its job id is its own `PID@START`.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import paths
from launcher.backends import local_array
from launcher.backends.base import Backend, Request
from launcher.backends.follow import follow_files
from launcher.backends.local_array import STATE_FILE, ArrayRun, Member, code_env, start_supervisor
from launcher.backends.local_array import merge_json as _merge_json
from launcher.backends.local_array import read_json as _read_json
from launcher.backends.local_array import state_dir as _state_dir
from launcher.backends.procs import GRACE_S, Proc, boot_id, kill_groups
from launcher.backends.spec import FollowOn, LaunchSpec
from launcher.jsonio import atomic_write_json
from launcher.runs.cost import Used, held_in
from launcher.runs.state import RunState
from launcher.shell import export_line

GPU_TABLE_DIR = Path("/tmp/recipe-launcher-gpus")
"""Where the machine's GPU table lives unless $LAUNCH_GPU_TABLE names another directory."""


def _merge_state(run_dir: Path, **changes: object) -> None:
    _merge_json(run_dir / STATE_FILE, **changes)


def _run_alive(groups: Sequence[Proc | None]) -> bool:
    """Some process of the run lives: the supervisor, the job, or anything left in their groups."""
    return any(g is not None and (g.alive() or g.group_members()) for g in groups)


@dataclass(frozen=True)
class LocalPayload:
    """What the supervisor needs besides the script: the GPUs it may hand out, the time limit."""

    gpu_ids: tuple[int, ...]
    time_limit_s: int


class LocalBackend(Backend[LocalPayload]):
    name = "local"

    @classmethod
    def asking(cls) -> LocalBackend:
        """A backend that only asks about and signals this machine's processes (status, explain,
        restarts, cancel): it has no profile, so it must not translate or submit."""
        return cls.__new__(cls)

    def _gpu_ids(self) -> list[int]:
        local = self.profile.local
        if local and local.gpu_ids is not None:
            return list(local.gpu_ids)
        gpu = self.profile.gpus
        return list(range(gpu.per_node)) if gpu else []

    def translate(self, spec: LaunchSpec) -> tuple[str, LocalPayload]:
        python = (self.profile.local and self.profile.local.python) or sys.executable
        exports = "\n".join(export_line(k, v) for k, v in spec.env.items())
        gpus = spec.gpus_per_node
        script = (
            "#!/usr/bin/env bash\n"
            f"# recipe-launcher run {spec.run_id}: recipe {spec.recipe_name} on cluster "
            f"{spec.cluster} (local backend)\n"
            f"# needs {gpus} GPU(s); the supervisor sets CUDA_VISIBLE_DEVICES before running this\n"
            "set -euo pipefail\n"
            f"cd {shlex.quote(str(spec.workdir))}\n"
            f"{exports}\n"
            f"exec {shlex.join(spec.local_command(python))}\n"
        )
        return script, LocalPayload(tuple(self._gpu_ids()), spec.time_s)

    @staticmethod
    def _supervisor_args(request: Request[LocalPayload]) -> tuple[str, ...]:
        """The supervisor's arguments after `--run-dir RUN_DIR`."""
        gpu_ids = ",".join(str(i) for i in request.payload.gpu_ids)
        return ("--gpus", str(request.gpus), "--gpu-ids", gpu_ids,
                "--time-limit", str(request.payload.time_limit_s))  # fmt: skip

    def submit(self, request: Request[LocalPayload]) -> str:
        env = {**os.environ, **code_env(request.spec.env), "LAUNCH_HOME": str(paths.launch_home())}
        _, supervisor = start_supervisor(request.spec.run_dir, self._supervisor_args(request), env)
        return str(supervisor)

    def find_submitted(self, runs: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """A supervisor started for a run directory (its command line names it), or a live array
        runner holding it (its manifest names it), recorded here when the submit was stopped before
        it recorded the job itself."""
        wanted = {str(run_dir): run_id for run_id, run_dir in runs}
        found = {**local_array.supervisors(set(wanted)), **local_array.queued_members(set(wanted))}
        return {wanted[run_dir]: job_id for run_dir, job_id in found.items()}

    def array_limit(self, requests: Sequence[Request[LocalPayload]], max_parallel: int) -> int:
        """Runs without GPUs share this machine's cores: at most cores // CPUs per task of them at
        once (two 2-CPU evaluations side by side on two cores ran 4x slower than one by one). Runs
        with GPUs: at most as many as this machine's GPUs hold at once (the others would only wait)."""
        if requests and not requests[0].gpus:
            cores = len(os.sched_getaffinity(0))
            return min(max_parallel, max(1, cores // max(1, requests[0].spec.cpus_per_task)))
        if requests:
            return min(max_parallel, max(1, len(requests[0].payload.gpu_ids) // requests[0].gpus))
        return max_parallel

    def submit_array(self, requests: Sequence[Request[LocalPayload]], max_parallel: int) -> list[str]:
        """One supervisor per run, started at once, when all may run at once; else one runner that
        starts them in order as `array_limit` slots free (as Slurm's `%P` throttles an array), each
        supervisor then queueing for its GPUs."""
        cap = self.array_limit(requests, max_parallel)
        if cap >= len(requests):
            return [self.submit(r) for r in requests]
        runs = [ArrayRun(r.spec.run_dir, self._supervisor_args(r), code_env(r.spec.env)) for r in requests]
        return local_array.submit(runs, cap)

    def array_cost(self, requests: Sequence[Request[LocalPayload]], max_parallel: int) -> str | None:
        return local_array.cost_text(len(requests), self.array_limit(requests, max_parallel))

    def submit_after(self, request: FollowOn, *, after: str) -> str:
        """A detached process (its own session, like a supervisor) started at once: `request` waits
        for `after` itself. Its record (`follows`) lets `status` and `cancel` answer for its id."""
        with open(request.out, "ab") as out, open(request.err, "ab") as err:
            proc = subprocess.Popen(
                request.command(sys.executable), cwd=request.workdir, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, env={**os.environ, **request.env},
            )  # fmt: skip
        follow_on = Proc.of(proc.pid)
        job_id = str(follow_on)
        record = {"follows": after, "folder": str(request.folder), "boot": follow_on.boot}
        atomic_write_json(_state_dir() / f"{job_id}.json", record)
        return job_id

    def _record(self, job_id: str) -> tuple[Proc, Path | None, Proc | None]:
        """The supervisor, the run directory and the job's own process (once it started)."""
        record = _read_json(_state_dir() / f"{job_id}.json")
        supervisor = Proc.parse(job_id, record.get("boot"))
        run_dir = Path(record["run_dir"]) if isinstance(record.get("run_dir"), str) else None
        job = Proc.from_json(_read_json(_state_dir() / f"{job_id}.job.json").get("job"))
        if job is None and run_dir is not None:
            job = Proc.from_json(_read_json(run_dir / STATE_FILE).get("job"))
        return supervisor, run_dir, job

    @staticmethod
    def _started(job_id: str) -> tuple[str, tuple[str, str | None] | None]:
        """The id to answer for: an array run's supervisor once the runner started it (else the id
        itself); with (state, reason) of an array run that was not started."""
        member = Member.parse(job_id)
        if member is None:
            return job_id, None
        supervisor = member.supervisor()
        return (supervisor, None) if supervisor is not None else (job_id, member.queued())

    def _state(self, job_id: str) -> RunState:
        job_id, queued = self._started(job_id)
        if queued is not None:
            return RunState(queued[0])
        try:
            supervisor, run_dir, job = self._record(job_id)
        except ValueError:
            return RunState.UNKNOWN
        if run_dir is None:
            return self._follow_on_state(job_id, supervisor)
        recorded = _read_json(run_dir / STATE_FILE)
        state = RunState(recorded.get("state", "unknown"))
        if state.is_terminal:
            return state
        if supervisor.alive() and not run_dir.is_dir():  # deleted under it: its state file went too
            return RunState.RUNNING if job is not None and _run_alive([job]) else RunState.PENDING
        if supervisor.alive():
            return state
        if _run_alive([supervisor, job]):
            return RunState.RUNNING  # the supervisor is gone but the job's processes are not
        cancelling = recorded.get("cancelling") or _read_json(_state_dir() / f"{job_id}.json").get(
            "cancelling"
        )
        return RunState.CANCELLED if cancelling else RunState.FAILED

    @staticmethod
    def _follow_on_state(job_id: str, process: Proc) -> RunState:
        """A follow-on records no outcome of its own: running while its process group lives, then
        cancelled if `cancel` stopped it, else failed. Unknown: an id of no follow-on."""
        record = _read_json(_state_dir() / f"{job_id}.json")
        if "follows" not in record:
            return RunState.UNKNOWN
        if _run_alive([process]):
            return RunState.RUNNING
        return RunState.CANCELLED if record.get("cancelling") else RunState.FAILED

    def status(self, job_ids: Sequence[str]) -> dict[str, RunState]:
        return {job_id: self._state(job_id) for job_id in job_ids}

    def gpu_hours(self, runs: Sequence[tuple[Path, Sequence[str]]]) -> list[Used | None]:
        """From the supervisor's record: `started` to `ended` (now while running) x the GPUs it took."""
        records = [_read_json(run_dir / STATE_FILE) for run_dir, _ in runs]
        return [held_in(r, len(r["gpus"]) if isinstance(r.get("gpus"), list) else 0) for r in records]

    def explain(self, job_id: str) -> str | None:
        job_id, queued = self._started(job_id)
        if queued is not None:
            return queued[1]
        try:
            supervisor, run_dir, job = self._record(job_id)
        except ValueError:
            return None
        if run_dir is None:
            return None
        recorded = _read_json(run_dir / STATE_FILE)
        if not run_dir.is_dir() and _run_alive([supervisor, job]):
            return f"its run directory {run_dir} is gone (deleted?); its processes run until `launch cancel`"
        if RunState(recorded.get("state", "unknown")).is_terminal or supervisor.alive():
            return recorded.get("reason")
        if _run_alive([supervisor, job]):
            return (
                "the supervisor died but processes of the job still run (and hold its GPUs); "
                "`launch cancel` stops them"
            )
        return "the supervisor died before the job ended (killed?); no outcome was recorded"

    def logs(self, run_dir: Path, job_id: str, follow: bool = False) -> Iterator[tuple[Path, str]]:
        files = [run_dir / "logs" / "task0.out", run_dir / "logs" / "task0.err"]
        done = (lambda: self._state(job_id).is_terminal) if follow else (lambda: True)
        yield from follow_files(lambda: files, done)

    def cancel(self, job_id: str) -> None:
        """Kill first, record after: SIGTERM the supervisor (it passes it on to the job's group),
        or the job's group itself when the supervisor is gone; SIGKILL what is left after GRACE_S.
        A run directory deleted meanwhile only means there is nothing to record. An array run not
        started yet is taken off the runner's queue."""
        member = Member.parse(job_id)
        if member is not None:
            if self._state(job_id).is_terminal:
                return
            started = member.take_off_queue()
            if started is None:
                return
            job_id = started
        supervisor, run_dir, job = self._record(job_id)
        if run_dir is not None and self._state(job_id).is_terminal:
            return
        with suppress(OSError):  # intent, for a status taken while the processes are dying
            _merge_json(_state_dir() / f"{job_id}.json", cancelling=True)
        if supervisor.alive():
            supervisor.signal_group(signal.SIGTERM)
            kill_groups([supervisor, *([job] if job else [])], grace=GRACE_S, term=False)
        else:
            kill_groups([g for g in (supervisor, job) if g is not None])
        if (
            run_dir is not None
            and not RunState(_read_json(run_dir / STATE_FILE).get("state", "unknown")).is_terminal
        ):
            _merge_state(run_dir, state="cancelled", cancelling=True, ended=time.time())


# ---------------------------------------------------------------- the supervisor process


def gpu_table_dir() -> Path:
    """The machine's GPU table directory, created writable by every user (mode 0777: a sticky
    directory would stop one user from atomically replacing a table another user wrote)."""
    path = Path(os.environ.get("LAUNCH_GPU_TABLE") or GPU_TABLE_DIR)
    if not path.is_dir():
        with suppress(FileExistsError):
            path.mkdir(parents=True)
            path.chmod(0o777)
    return path


def _holder_alive(entry: object) -> bool:
    """A GPU holder {"supervisor": proc, "job": proc} (or a bare PID from older tables) lives."""
    if isinstance(entry, dict) and "supervisor" in entry:
        return _run_alive([Proc.from_json(entry.get("supervisor")), Proc.from_json(entry.get("job"))])
    proc = Proc.from_json(entry)
    return proc is not None and proc.alive()


@contextmanager
def _gpu_table() -> Iterator[dict[str, Any]]:
    """The machine-wide GPU table, locked: {"holders": {gpu: {"supervisor": proc, "job": proc}},
    "queue": [proc, ...]}. A GPU stays held while any process of the run holding it lives."""
    directory = gpu_table_dir()
    fd = os.open(directory / "gpus.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        with suppress(PermissionError):
            os.fchmod(fd, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = directory / "gpus.json"
        table = _read_json(path)
        if table.get("boot") != boot_id():
            table = {"boot": boot_id()}  # written before a reboot: nothing of it runs any more
        table["holders"] = {g: h for g, h in (table.get("holders") or {}).items() if _holder_alive(h)}
        table["queue"] = [q for q in table.get("queue") or [] if _holder_alive(q)]
        yield table
        atomic_write_json(path, table)
    finally:
        os.close(fd)


def _acquire(me: Proc, count: int, gpu_ids: list[int], run_dir: Path) -> list[int]:
    """Block until `count` GPUs are free and this process is first in the queue."""
    if count > len(gpu_ids):
        raise SystemExit(f"needs {count} GPUs but this machine offers {len(gpu_ids)}")
    with _gpu_table() as table:
        table["queue"].append(me.to_json())
    while True:
        with _gpu_table() as table:
            free = [g for g in gpu_ids if str(g) not in table["holders"]]
            queue = [Proc.from_json(q) for q in table["queue"]]
            if queue and queue[0] == me and len(free) >= count:
                taken = free[:count]
                for g in taken:
                    table["holders"][str(g)] = {"supervisor": me.to_json(), "job": None}
                table["queue"] = table["queue"][1:]
                return taken
            ahead = queue.index(me) if me in queue else 0
        _merge_state(
            run_dir, state="pending",
            reason=f"waiting for {count} free GPU(s): {len(free)} free, {ahead} run(s) ahead",
        )  # fmt: skip
        time.sleep(1.0)


def _hold_by_job(me: Proc, job: Proc) -> None:
    """The job's process group holds this supervisor's GPUs too (the GPUs outlive a dead supervisor)."""
    with _gpu_table() as table:
        for entry in table["holders"].values():
            if isinstance(entry, dict) and Proc.from_json(entry.get("supervisor")) == me:
                entry["job"] = job.to_json()


def _release(me: Proc) -> None:
    with _gpu_table() as table:
        table["holders"] = {
            g: h for g, h in table["holders"].items()
            if not (isinstance(h, dict) and Proc.from_json(h.get("supervisor")) == me)
        }  # fmt: skip
        table["queue"] = [q for q in table["queue"] if Proc.from_json(q) != me]


def _die_with(parent: int) -> Callable[[], None]:
    """preexec_fn: the child gets SIGKILL when its parent (the supervisor) dies, as Ray's workers
    do; it is kept across bash's exec of python. Grandchildren are not covered: they stay in the
    job's process group, which holds the GPUs and which `launch cancel` kills."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def setup() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return setup


def supervise(run_dir: Path, gpus: int, gpu_ids: list[int], time_limit: int) -> int:
    """Run submit.sh once its GPUs are free; record the outcome. Returns the job's exit code."""
    me = Proc.me()
    stop: dict[str, int | None] = {"signal": None}
    started = False

    def on_term(signum: int, _frame: object) -> None:
        if not started:
            _merge_state(run_dir, state="cancelled", reason=None, ended=time.time())
            os._exit(128 + signum)  # still queued: nothing to stop; the GPU lock dies with us
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    taken = _acquire(me, gpus, gpu_ids, run_dir) if gpus else []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in taken)}
    logs = run_dir / "logs"
    timed_out, reason = False, None
    try:
        with open(logs / "task0.out", "ab") as out, open(logs / "task0.err", "ab") as err:
            proc = subprocess.Popen(
                ["bash", str(run_dir / "submit.sh")], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=env, cwd=run_dir, process_group=0, preexec_fn=_die_with(os.getpid()),
            )  # fmt: skip
            job = Proc.of(proc.pid)
            started = True
            with suppress(OSError):
                atomic_write_json(_state_dir() / f"{me}.job.json", {"job": job.to_json()})
            if taken:
                _hold_by_job(me, job)
            _merge_state(
                run_dir, state="running", gpus=taken, reason=None, started=time.time(), job=job.to_json()
            )  # fmt: skip
            deadline = time.monotonic() + time_limit if time_limit else None
            kill_at: float | None = None
            while proc.poll() is None:
                now = time.monotonic()
                if kill_at is None and (stop["signal"] is not None or (deadline and now > deadline)):
                    timed_out = stop["signal"] is None
                    job.signal_group(signal.SIGTERM)
                    kill_at = now + GRACE_S
                elif kill_at is not None and now > kill_at:
                    reason = f"did not stop within {GRACE_S} s of SIGTERM: killed"
                    job.signal_group(signal.SIGKILL)
                time.sleep(0.2)
            code = proc.returncode
            # what the job left behind dies with it, as Slurm's process tracking does at step end
            kill_groups([job], grace=1)
    finally:
        if taken:
            _release(me)
    if stop["signal"] is not None:
        state = "cancelled"
    elif timed_out:
        state, reason = "timeout", f"time limit of {time_limit} s reached" + (f"; {reason}" if reason else "")
    else:
        state = "completed" if code == 0 else "failed"
    _merge_state(run_dir, state=state, exit_code=code, ended=time.time(), reason=reason)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="recipe-launcher local supervisor")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--gpu-ids", default="")
    parser.add_argument("--time-limit", type=int, default=0)
    args = parser.parse_args(argv)
    ids = [int(x) for x in args.gpu_ids.split(",") if x.strip()]
    return supervise(args.run_dir, args.gpus, ids, args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
