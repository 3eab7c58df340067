"""What the Ray backend runs inside the Ray cluster: the job wrapper and the array supervisor.

    python -m launcher.backends.ray.agent job --run-dir DIR --time-limit S -- COMMAND...
    python -m launcher.backends.ray.agent array        # the spec is in $LAUNCH_RAY_ARRAY
    python -m launcher.backends.ray.agent exec -- COMMAND...

`job` is every Ray job's entrypoint. It runs COMMAND (`python -m jobs.<job> --run-dir DIR`, or
torchrun) with its stdout and stderr copied both to Ray's job log and to `DIR/logs/task0.out` and
`task0.err`, the layout of the other backends, so `launch logs` works once the head is gone. It
enforces the recipe's time limit (SIGTERM, SIGKILL 30 s later, exit 124) and records the outcome in
`DIR/.ray_exit.json`. A run directory that this node cannot see (a remote cluster without a shared
runs root) is one clear error, exit 2.

Secrets: the submitting shell's passthrough variables (W&B, AWS, API keys) never travel in the
Ray job spec (Ray logs runtime_env in its session logs and serves it at /api/jobs/<id>). The
launcher writes them to a file only the user can read (0600, in `<runs root>/.ray-secrets/`, a
0700 directory beside the run directories, so on the shared filesystem a remote cluster already
needs) and names it in $LAUNCH_SECRETS_FILE; `job` reads it into the job's environment and deletes
it before the job starts.

`array` submits the entries of one `submit_array` call as Ray jobs with their pre-assigned
submission ids, never more than `max_parallel` unfinished at once, and exits once every entry is
submitted. An entry whose id already exists (cancelled before it started: `launch cancel` claims
the id) is skipped. Stdlib only, apart from `ray.job_submission` in `array`.

`exec` is the entrypoint of a follow-on job (a run's `--then` chain): it takes the secrets, as `job`
does, and replaces itself with COMMAND.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import IO, Any

from launcher.jsonio import atomic_write_json
from launcher.runs import logtimes

TIMEOUT_EXIT = 124
EXIT_FILE = ".ray_exit.json"
ARRAY_ENV = "LAUNCH_RAY_ARRAY"
SECRETS_ENV = "LAUNCH_SECRETS_FILE"
SECRETS_DIR = ".ray-secrets"


def secrets_file(run_dir: Path) -> Path:
    """Where a run's secrets wait for its job: beside the run directory, never inside it."""
    return run_dir.parent / SECRETS_DIR / f"{run_dir.name}.json"


def write_secrets(path: Path, env: dict[str, str]) -> None:
    """`env` as JSON in `path`, readable by this user only from the first byte (dir 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(env, handle)


def take_secrets() -> None:
    """Move the variables of $LAUNCH_SECRETS_FILE into this process's environment; delete the file."""
    name = os.environ.pop(SECRETS_ENV, "")
    if not name:
        return
    path = Path(name)
    try:
        env = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        sys.stderr.write(f"[launch] secrets file {path} not readable ({err}): the job runs without them\n")
        return
    finally:
        path.unlink(missing_ok=True)
    os.environ.update({str(k): str(v) for k, v in env.items()})


def encode_spec(spec: dict[str, Any]) -> str:
    """A JSON spec as one compact environment value (zlib + base64)."""
    return base64.b64encode(zlib.compress(json.dumps(spec, separators=(",", ":")).encode(), 9)).decode()


def decode_spec(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(zlib.decompress(base64.b64decode(text)))
    return data


def _copy(source: IO[bytes], targets: list[IO[bytes]]) -> None:
    """Copy a pipe to every target as the bytes arrive, flushing each chunk."""
    while True:
        chunk = source.read1(65536)  # type: ignore[attr-defined]
        if not chunk:
            return
        for target in targets:
            try:
                target.write(chunk)
                target.flush()
            except (OSError, ValueError):
                continue


def run_job(run_dir: Path, time_limit: int, command: list[str]) -> int:
    """Run `command`, teeing its output into `run_dir/logs/`; return its exit code (124: time limit)."""
    take_secrets()
    if not (run_dir / "recipe.yaml").is_file():
        sys.stderr.write(
            f"[launch] run directory {run_dir} is not visible on this node ({socket.gethostname()}): "
            "on a remote Ray cluster the runs root ($LAUNCH_RUNS) must be a filesystem shared with the "
            "submitting machine, mounted at the same path\n"
        )
        return 2
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.time()
    atomic_write_json(
        run_dir / EXIT_FILE, {"state": "running", "started": started, "host": socket.gethostname()}
    )
    logtimes.start(logs / "task0.out", logs / "task0.err")  # for `launch logs --merged`
    with open(logs / "task0.out", "ab") as out, open(logs / "task0.err", "ab") as err:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None and proc.stderr is not None
        copiers = [
            threading.Thread(target=_copy, args=(proc.stdout, [out, sys.stdout.buffer]), daemon=True),
            threading.Thread(target=_copy, args=(proc.stderr, [err, sys.stderr.buffer]), daemon=True),
        ]
        for thread in copiers:
            thread.start()
        deadline = started + time_limit if time_limit > 0 else None
        timed_out, forwarded, killed_at = False, False, None
        while proc.poll() is None:
            if stopping and not forwarded:
                forwarded = True
                proc.send_signal(stopping[0])
            if deadline is not None and time.time() > deadline and not timed_out:
                timed_out, killed_at = True, time.time() + 30
                sys.stderr.write(f"[launch] time limit of {time_limit} s reached: stopping the job\n")
                sys.stderr.flush()
                err.write(f"[launch] time limit of {time_limit} s reached: stopping the job\n".encode())
                err.flush()
                proc.terminate()
            if killed_at is not None and time.time() > killed_at:
                proc.kill()
                killed_at = None
            time.sleep(0.2)
        for thread in copiers:
            thread.join(timeout=10)
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    if timed_out:
        code = TIMEOUT_EXIT
    if stopping:
        state = "cancelled"
    elif timed_out:
        state = "timeout"
    else:
        state = "completed" if code == 0 else "failed"
    record = {"state": state, "exit_code": code, "started": started, "ended": time.time()}
    atomic_write_json(run_dir / EXIT_FILE, {**record, "host": socket.gethostname()})
    return code


# ---------------------------------------------------------------- the array supervisor


def _connect(address: str) -> Any:
    """A JobSubmissionClient: the launcher's address, else the dashboard of the cluster we run in."""
    import logging

    from ray.job_submission import JobSubmissionClient

    for name in [n for n in logging.root.manager.loggerDict if n == "ray" or n.startswith("ray.")]:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError) as err:
        print(f"[launch] {address} does not answer from inside the cluster ({err}); asking Ray", flush=True)
    import ray

    ray.init(address="auto", log_to_driver=False)
    return JobSubmissionClient()


def supervise_array(spec: dict[str, Any], poll: float = 1.0) -> int:
    """Submit the spec's entries in order, at most spec['max_parallel'] unfinished at a time.

    Returns 1 when an entry could not be submitted (its reason is in this job's log), else 0."""
    client = _connect(spec["address"])
    cap = max(1, int(spec["max_parallel"]))
    queue: list[dict[str, Any]] = list(spec["entries"])
    total, failures = len(queue), 0
    active: set[str] = set()
    print(f"[launch] array of {total}: at most {cap} at once", flush=True)
    while queue:
        active = {job for job in active if not client.get_job_status(job).is_terminal()}
        while queue and len(active) < cap:
            entry = queue.pop(0)
            job_id = entry["submission_id"]
            runtime_env = dict(entry["runtime_env"])  # secrets: in each entry's file (see above)
            if spec.get("upload", True):
                runtime_env["working_dir"] = os.getcwd()  # the code snapshot as this supervisor got it
            try:
                client.submit_job(**{**entry, "runtime_env": runtime_env})
            except RuntimeError as err:
                if "already exists" in str(err):
                    print(f"[launch] {job_id}: skipped (cancelled before it started)", flush=True)
                else:
                    failures += 1
                    print(
                        f"[launch] {job_id}: submit failed: {str(err).strip().splitlines()[-1]}", flush=True
                    )
                continue
            active.add(job_id)
            done = total - len(queue)
            print(f"[launch] {job_id}: submitted ({done}/{total}, {len(active)} unfinished)", flush=True)
        if queue:
            time.sleep(poll)
    print(f"[launch] all {total} entries handed to Ray", flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="recipe-launcher: what runs inside a Ray cluster")
    sub = parser.add_subparsers(dest="what", required=True)
    job = sub.add_parser("job", help="run one job, logs into its run directory")
    job.add_argument("--run-dir", type=Path, required=True)
    job.add_argument("--time-limit", type=int, default=0)
    job.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("array", help=f"submit an array's entries (spec in ${ARRAY_ENV})")
    follow_on = sub.add_parser("exec", help="run a command with the submitting shell's variables")
    follow_on.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.what == "array":
        return supervise_array(decode_spec(os.environ[ARRAY_ENV]))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error(f"{args.what}: no command after --")
    if args.what == "job":
        return run_job(args.run_dir, args.time_limit, command)
    take_secrets()
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
