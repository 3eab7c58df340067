"""When each log line was written: a side index beside a task's stdout/stderr files.

`logs/<stem>.times` holds one line `<unix time> <stdout bytes> <stderr bytes>` each time the
sizes of `<stem>.out` / `<stem>.err` changed, sampled every SAMPLE_S seconds by a daemon thread
of the job itself (jobs/entry.py: local backend, Slurm) or of the Ray job wrapper, which tees the
job's pipes into the files.

Why a size sampler and not a timestamping pipe in front of the files: the log files stay exactly
what the job wrote (no prefixes, nothing to strip), and nothing sits between the job and its files
that could lose the last lines when the job dies hard (a segfault's or the OOM killer's last words
reach the file as before). A line's time is the first sample that saw the file reach the line's
end, so `launch logs --merged` orders stdout and stderr to within SAMPLE_S. Stdlib only.
"""

from __future__ import annotations

import atexit
import os
import stat
import threading
import time
from pathlib import Path

SAMPLE_S = 0.2
SUFFIX = ".times"


def index_of(log: Path) -> Path:
    """The index of `logs/<stem>.out` or `logs/<stem>.err`."""
    return log.with_suffix(SUFFIX)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def start(out: Path, err: Path, every: float = SAMPLE_S) -> threading.Thread:
    """Sample the sizes of `out` and `err` into their index until the process exits."""
    index = index_of(out)
    last = (-1, -1)
    lock = threading.Lock()

    def sample() -> bool:
        nonlocal last
        with lock:
            sizes = (_size(out), _size(err))
            if sizes == last:
                return True
            last = sizes
            try:
                with open(index, "a") as fh:
                    fh.write(f"{time.time():.3f} {sizes[0]} {sizes[1]}\n")
            except OSError:
                return False  # a full or vanished disk: the job goes on without an index
            return True

    def loop() -> None:
        while sample():
            time.sleep(every)

    atexit.register(sample)  # the last lines (a traceback at exit) get their time too
    thread = threading.Thread(target=loop, name="log-times", daemon=True)
    thread.start()
    return thread


def start_for_this_process() -> threading.Thread | None:
    """Index this job's log files: its own stdout/stderr when both are regular `<stem>.out` /
    `<stem>.err` files (the local backend), else, under Slurm (where srun hands the job pipes),
    `$LAUNCH_RUN_DIR/logs/<job id>.out|err` as the batch script writes them. Once per job
    (LOCAL_RANK 0 of node 0); nothing when neither applies (Ray: its job wrapper does it)."""
    env = os.environ
    if env.get("LOCAL_RANK", "0") != "0" or env.get("SLURM_NODEID", "0") != "0":
        return None
    try:
        paths = [Path(os.readlink(f"/proc/self/fd/{fd}")) for fd in (1, 2)]
        regular = all(stat.S_ISREG(os.fstat(fd).st_mode) for fd in (1, 2))
    except OSError:
        paths, regular = [], False
    if regular and paths[0].suffix == ".out" and paths[1] == paths[0].with_suffix(".err"):
        return start(paths[0], paths[1])
    if env.get("SLURM_JOB_ID") and env.get("LAUNCH_RUN_DIR"):
        array = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        stem = f"{array[0]}_{array[1]}" if all(array) else env["SLURM_JOB_ID"]
        out = Path(env["LAUNCH_RUN_DIR"]) / "logs" / f"{stem}.out"
        if out.exists():
            return start(out, out.with_suffix(".err"))
    return None


def read(index: Path) -> list[tuple[float, int, int]]:
    """The samples of an index, in order; a torn last line is skipped; no file: []."""
    try:
        text = index.read_text()
    except OSError:
        return []
    samples = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            try:
                samples.append((float(parts[0]), int(parts[1]), int(parts[2])))
            except ValueError:
                continue
    return samples
