"""Local backend: jobs as detached process groups on this machine, GPUs handed out FIFO.

`submit` starts a supervisor (`python -m launcher.backends.local`) in a new session. The supervisor
waits in a FIFO queue until enough of this machine's GPUs are free, sets CUDA_VISIBLE_DEVICES,
runs the run's submit.sh with its output in logs/, enforces the time limit, and records the
outcome in `<run_dir>/.local_state.json`. Cancelling kills the supervisor's whole process group.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from launcher import paths
from launcher.backends.base import Backend, JobState, Request, job_command, job_env
from launcher.backends.follow import follow_files
from launcher.jobkinds import kind_of
from launcher.run import Run
from launcher.runfiles import atomic_write_json

STATE_FILE = ".local_state.json"


def _state_dir() -> Path:
    path = paths.launch_home() / "local"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def command_line(run: Run, python: str) -> list[str]:
    """The job's command: torchrun for a multi-GPU or DeepSpeed job of a torchrun kind (the job-kind
    table), else plain python -m."""
    gpus = run.recipe.resources.gpus_per_node
    deepspeed = run.recipe.distributed.strategy == "deepspeed"
    kind = kind_of(run.recipe)
    if kind.torchrun and not run.recipe.eval.only and (gpus > 1 or deepspeed):
        return [
            python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={max(gpus, 1)}",
            "-m", kind.module, "--run-dir", str(run.run_dir),
        ]  # fmt: skip
    return job_command(run.run_dir, run.recipe.job, python)


class LocalBackend(Backend):
    name = "local"

    def _gpu_ids(self) -> list[int]:
        local = self.profile.local
        if local and local.gpu_ids is not None:
            return list(local.gpu_ids)
        gpu = self.profile.gpus
        return list(range(gpu.per_node)) if gpu else []

    def dryrun(self, run: Run) -> Request:
        python = (self.profile.local and self.profile.local.python) or sys.executable
        env = job_env(run)
        gpus = run.recipe.resources.gpus_per_node
        exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
        script = (
            "#!/usr/bin/env bash\n"
            f"# recipe-launcher run {run.run_id}: recipe {run.recipe.name} on cluster "
            f"{run.profile.name} (local backend)\n"
            f"# needs {gpus} GPU(s); the supervisor sets CUDA_VISIBLE_DEVICES before running this\n"
            "set -euo pipefail\n"
            f"cd {shlex.quote(str(paths.PROJECT_ROOT))}\n"
            f"{exports}\n"
            f"exec {shlex.join(command_line(run, python))}\n"
        )
        return Request(
            run=run, script=script, env=env, gpus=gpus, name=run.run_id,
            details={"gpu_ids": self._gpu_ids(), "time_limit_s": run.recipe.resources.seconds},
        )  # fmt: skip

    def submit(self, request: Request) -> str:
        run_dir = request.run.run_dir
        gpu_ids = ",".join(str(i) for i in request.details.get("gpu_ids", []))  # type: ignore[union-attr]
        cmd = [
            sys.executable, "-m", "launcher.backends.local", "--run-dir", str(run_dir),
            "--gpus", str(request.gpus), "--gpu-ids", gpu_ids,
            "--time-limit", str(request.details.get("time_limit_s", 0)),
        ]  # fmt: skip
        atomic_write_json(run_dir / STATE_FILE, {"state": "pending"})
        with open(run_dir / "logs" / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(
                cmd, cwd=paths.PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, env={**os.environ, "LAUNCH_HOME": str(paths.launch_home())},
            )  # fmt: skip
        job_id = str(proc.pid)
        atomic_write_json(_state_dir() / f"{job_id}.json", {"run_dir": str(run_dir)})
        return job_id

    def _run_dir(self, job_id: str) -> Path | None:
        try:
            return Path(json.loads((_state_dir() / f"{job_id}.json").read_text())["run_dir"])
        except (OSError, ValueError, KeyError):
            return None

    def _state(self, job_id: str) -> JobState:
        run_dir = self._run_dir(job_id)
        if run_dir is None:
            return JobState.UNKNOWN
        try:
            recorded = json.loads((run_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            recorded = {}
        state = JobState(recorded.get("state", "unknown"))
        if state.is_terminal:
            return state
        if _alive(int(job_id)):
            return state
        return JobState.CANCELLED if recorded.get("cancelling") else JobState.FAILED

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        return {job_id: self._state(job_id) for job_id in job_ids}

    def explain(self, job_id: str) -> str | None:
        run_dir = self._run_dir(job_id)
        if run_dir is None:
            return None
        try:
            return json.loads((run_dir / STATE_FILE).read_text()).get("reason")
        except (OSError, ValueError):
            return None

    def logs(self, run_dir: Path, job_id: str, follow: bool = False) -> Iterator[tuple[Path, str]]:
        files = [run_dir / "logs" / "task0.out", run_dir / "logs" / "task0.err"]
        done = (lambda: self._state(job_id).is_terminal) if follow else (lambda: True)
        yield from follow_files(lambda: files, done)

    def cancel(self, job_id: str) -> None:
        run_dir = self._run_dir(job_id)
        if run_dir is not None and not self._state(job_id).is_terminal:
            _merge_state(run_dir, cancelling=True)
        pid = int(job_id)
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)
        if _group_alive(pid):
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if run_dir is not None and not self._state(job_id).is_terminal:
            _merge_state(run_dir, state="cancelled")


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _merge_state(run_dir: Path, **changes: object) -> None:
    path = run_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.update(changes)
    atomic_write_json(path, data)


# ---------------------------------------------------------------- the supervisor process


@contextmanager
def _gpu_table() -> Iterator[dict]:
    """The machine-wide GPU table {"holders": {gpu: pid}, "queue": [pid, ...]}, locked."""
    directory = _state_dir()
    with open(directory / "gpus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = directory / "gpus.json"
        try:
            table = json.loads(path.read_text())
        except (OSError, ValueError):
            table = {}
        table.setdefault("holders", {})
        table.setdefault("queue", [])
        table["holders"] = {g: p for g, p in table["holders"].items() if _alive(p)}
        table["queue"] = [p for p in table["queue"] if _alive(p)]
        yield table
        atomic_write_json(path, table)


def _acquire(count: int, gpu_ids: list[int], run_dir: Path) -> list[int]:
    """Block until `count` GPUs are free and this process is first in the queue."""
    if count > len(gpu_ids):
        raise SystemExit(f"needs {count} GPUs but this machine offers {len(gpu_ids)}")
    me = os.getpid()
    with _gpu_table() as table:
        table["queue"].append(me)
    while True:
        with _gpu_table() as table:
            free = [g for g in gpu_ids if str(g) not in table["holders"]]
            if table["queue"] and table["queue"][0] == me and len(free) >= count:
                taken = free[:count]
                for g in taken:
                    table["holders"][str(g)] = me
                table["queue"].remove(me)
                return taken
            ahead = table["queue"].index(me) if me in table["queue"] else 0
        _merge_state(
            run_dir, state="pending",
            reason=f"waiting for {count} free GPU(s): {len(free)} free, {ahead} run(s) ahead",
        )  # fmt: skip
        time.sleep(1.0)


def _release() -> None:
    me = os.getpid()
    with _gpu_table() as table:
        table["holders"] = {g: p for g, p in table["holders"].items() if p != me}
        table["queue"] = [p for p in table["queue"] if p != me]


def supervise(run_dir: Path, gpus: int, gpu_ids: list[int], time_limit: int) -> int:
    """Run submit.sh once its GPUs are free; record the outcome. Returns the job's exit code."""
    stop: dict[str, int | None] = {"signal": None}
    started = False

    def on_term(signum: int, _frame: object) -> None:
        if not started:
            _merge_state(run_dir, state="cancelled", reason=None, ended=time.time())
            os._exit(128 + signum)  # still queued: nothing to stop; the GPU lock dies with us
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    taken = _acquire(gpus, gpu_ids, run_dir) if gpus else []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in taken)}
    logs = run_dir / "logs"
    try:
        with open(logs / "task0.out", "ab") as out, open(logs / "task0.err", "ab") as err:
            proc = subprocess.Popen(
                ["bash", str(run_dir / "submit.sh")], stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, env=env, cwd=paths.PROJECT_ROOT,
            )  # fmt: skip
            started = True
            _merge_state(run_dir, state="running", gpus=taken, reason=None, started=time.time())
            deadline = time.monotonic() + time_limit if time_limit else None
            timed_out = False
            while proc.poll() is None:
                if stop["signal"] is not None:
                    proc.terminate()
                if deadline and time.monotonic() > deadline and not timed_out:
                    timed_out = True
                    proc.terminate()
                time.sleep(0.2)
            code = proc.returncode
    finally:
        if taken:
            _release()
    if stop["signal"] is not None:
        state = "cancelled"
    elif timed_out:
        state = "timeout"
    else:
        state = "completed" if code == 0 else "failed"
    _merge_state(run_dir, state=state, exit_code=code, ended=time.time())
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
