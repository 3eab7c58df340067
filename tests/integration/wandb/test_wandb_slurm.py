"""W&B from a cluster whose nodes log offline (issue 27, items 2, 3 and 6), on the dev Slurm cluster.

One smoke run logs each of its 40 steps to W&B offline and is sent USR2 at step 8 (it checkpoints,
is requeued and resumes: two offline segments with one W&B id). `launch sync RUN --wandb --follow`
runs on the "login node" from the submit on, against the recording W&B server. While the job runs,
steps reach the server; when it has ended the follow ends by itself, and the server holds steps
1..40 once, in order, with the config and the scheduler's story (state, restarts).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Launch, require_slurm, run_state, wait_for
from tests.support.wandb_server import running

pytestmark = pytest.mark.slurm

INTERVAL_S = 2


def _log(runs: Path, run_id: str) -> str:
    job_id = json.loads((runs / run_id / "launch.json").read_text())["job_ids"][0]
    path = runs / run_id / "logs" / f"{job_id}.out"
    return path.read_text() if path.exists() else ""


def test_a_requeued_run_reaches_wandb_live_and_whole(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path
) -> None:
    require_slurm()
    runs = tmp_path / "runs"
    with running(tmp_path / "requests.jsonl") as server:
        env = {**launch_env, "WANDB_BASE_URL": server.url, "WANDB_API_KEY": "k" * 40}
        sets = ["train.max_steps=40", "train.save_steps=100", "tracking.wandb.mode=offline",
                "env={SMOKE_STEP_SECONDS: '0.5'}"]  # fmt: skip
        submit = [sys.executable, "-m", "launcher.cli", "recipe", "tiny_smoke", "--cluster", "dev-slurm"]
        proc = subprocess.run([*submit, *(a for s in sets for a in ("--set", s))], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        run_id = proc.stdout.split()[0]
        sync = ["sync", run_id, "--wandb", "--follow", "--interval", str(INTERVAL_S)]
        follow = subprocess.Popen([sys.executable, "-m", "launcher.cli", *sync], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            wait_for(lambda: "step 8/40" in _log(runs, run_id), timeout=90)
            job_id = json.loads((runs / run_id / "launch.json").read_text())["job_ids"][0]
            subprocess.run(["scancel", "--batch", "--signal=USR2", job_id], check=True, timeout=30)
            wandb_id = json.loads((runs / run_id / "launch.json").read_text())["wandb"]["train"]["id"]
            wait_for(lambda: len(server.steps(wandb_id)) >= 20, timeout=90, every=0.5)
            live = server.steps(wandb_id)
            assert "done" not in _log(runs, run_id), "the steps came only once the job had ended"
            wait_for(lambda: run_state(launch, run_id) == "completed", timeout=120, every=1)
            out, err = follow.communicate(timeout=60)  # it ends by itself once the run is synced
        finally:
            follow.kill()
        assert follow.returncode == 0, err
        held = server.runs()[wandb_id]

    steps = [row["train/global_step"] for row in held["history"]]
    assert steps == list(range(1, 41)), steps
    assert [row["_step"] for row in held["history"]] == steps and live == steps[: len(live)]
    assert (
        "restart 1" in _log(runs, run_id) and len(list((runs / run_id / "wandb").glob("offline-run-*"))) == 2
    )
    summary = held["summary"]
    assert (summary["launcher/state"], summary["launcher/restarts"]) == ("completed", 1), summary
    assert summary["launcher/gpu_hours"] == 0, summary  # sacct's figure: a CPU-only job holds no GPU
    assert "launcher:completed" in held["tags"] and held["config"]["name"] == "tiny_smoke"
    assert held["exitcode"] == 0 and "k" * 40 not in out + err
    assert out.splitlines()[-1].startswith(f"synced {run_id} (W&B run {wandb_id}): ")
    delays = [at - row["_timestamp"] for at, row in zip(held["arrived"], held["history"], strict=True)]
    print(f"delay from log to W&B, interval {INTERVAL_S} s: median {statistics.median(delays):.1f} s, "
          f"worst {max(delays):.1f} s over {len(delays)} steps: {[round(d, 1) for d in delays]}")  # fmt: skip
