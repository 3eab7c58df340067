"""A model-free stand-in for a training job: counts steps, checkpoints, resumes, obeys signals.

    python -m jobs.smoke --run-dir DIR

Reads `train.max_steps` and `train.save_steps` from the run's recipe. Recipe `env` entries:
SMOKE_STEP_SECONDS sets the time per step, SMOKE_FAIL_AT=N makes it fail at step N,
SMOKE_IGNORE_TERM=1 makes it ignore SIGTERM (a job that will not stop), SMOKE_CHILD=1 makes it start
a child process that outlives it (a stand-in for a data-loader worker), SMOKE_STDERR=1 makes it
write a line to stderr half a step after each step's stdout line and half a step before what
follows (for `launch logs --merged`). With W&B on (tracking.wandb), each step logs
`train/loss` and `train/global_step`. On SIGUSR2
(Slurm's warning before preemption or the time limit) it saves a checkpoint and exits with
code 3, so the backend can requeue it. Like jobs.train, it uploads each checkpoint to the
recipe's artifact store (artifacts.uri) in the background.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs import wandb_run
from jobs.entry import REQUEUE_EXIT, start_log_times
from jobs.uploads import BackgroundUploader
from launcher.config.recipe import read_resolved
from launcher.runs.checkpoints import checkpoint_dir, latest_complete, mark_complete, step_of


def save(run_dir: Path, step: int, uploader: BackgroundUploader) -> None:
    path = checkpoint_dir(run_dir, step)
    path.mkdir(parents=True, exist_ok=True)
    (path / "state.json").write_text(json.dumps({"step": step}) + "\n")
    mark_complete(path, step=step)
    print(f"saved checkpoint-{step}", flush=True)
    uploader.submit(f"checkpoints/{path.name}")


def main() -> int:
    start_log_times()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    run_dir = parser.parse_args().run_dir
    recipe = read_resolved(run_dir)
    total = recipe.train.max_steps or 20
    every = recipe.train.save_steps
    pause = float(os.environ.get("SMOKE_STEP_SECONDS", "0.2"))
    fail_at = int(os.environ.get("SMOKE_FAIL_AT", "0"))

    signalled: list[int] = []
    signal.signal(signal.SIGUSR2, lambda signum, _frame: signalled.append(signum))
    if os.environ.get("SMOKE_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("SMOKE_CHILD") == "1":
        child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
        print(f"child process {child.pid}", flush=True)

    uploader = BackgroundUploader(recipe, run_dir)
    uploader.submit_pending()
    latest = latest_complete(run_dir)
    step = (step_of(latest) or 0) if latest else 0
    print(f"smoke job {recipe.name}: {total} steps, resuming from step {step}", flush=True)
    print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}", flush=True)
    wandb = wandb_run.start(recipe, run_dir, "train")  # None unless the recipe's tracking asks for W&B
    while step < total:
        time.sleep(pause)
        step += 1
        print(f"step {step}/{total}", flush=True)
        if wandb is not None:
            wandb.log({"train/loss": round(1 / step, 6), "train/global_step": step})
        if os.environ.get("SMOKE_STDERR") == "1":
            time.sleep(pause / 2)
            print(f"stderr after step {step}", file=sys.stderr, flush=True)
            time.sleep(pause / 2)
        if step == fail_at:
            print(f"failing at step {step} as SMOKE_FAIL_AT asks", file=sys.stderr, flush=True)
            return 1
        if step % every == 0 or step == total:
            save(run_dir, step, uploader)
        if signalled:
            if step % every:
                save(run_dir, step, uploader)
            print(f"signal {signalled[0]}: checkpointed at step {step}, asking to be requeued", flush=True)
            if wandb is not None:
                wandb.finish()
            uploader.finish(timeout=60)
            return REQUEUE_EXIT
    results = run_dir / "results"
    results.mkdir(exist_ok=True)
    (results / "smoke.json").write_text(json.dumps({"steps": step}) + "\n")
    uploader.finish()
    if wandb is not None:
        wandb.finish()
    print("done", flush=True)
    return 0
