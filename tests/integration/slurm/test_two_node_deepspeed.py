"""DeepSpeed ZeRO-2 over two Slurm nodes on CPU ranks (gloo, DeepSpeed's CPU accelerator): tiny_ner
trains with its optimizer state partitioned over the two nodes' ranks, a USR2 checkpoints once and
requeues, and the job resumes on both nodes from that checkpoint's ZeRO shards.

Start the cluster first: `bash cluster/dev/slurm-up.sh` (two nodes). Without it this fails, not skips.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Launch, require_slurm, run_state, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

STEPS = 8
SETS = ("resources.nodes=2", "distributed.strategy=deepspeed", "distributed.zero_stage=2",
        f"train.max_steps={STEPS}", "train.save_steps=1000", "train.logging_steps=1",
        "data.max_train_samples=64", "tracking.wandb.mode=disabled")  # fmt: skip


def _sacct(job_id: str) -> str:
    cmd = ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,NNodes,NodeList"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout.strip()


def test_zero2_on_two_nodes_checkpoints_on_usr2_and_resumes_from_its_shards(
    launch: Launch, tmp_path: Path
) -> None:
    require_slurm()
    proc = launch("recipe", "tiny_ner", "--cluster", "dev-slurm", *[a for s in SETS for a in ("--set", s)])
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[0]
    run_dir = tmp_path / "runs" / run_id
    job_id = str(json.loads((run_dir / "launch.json").read_text())["job_ids"][0])
    out = run_dir / "logs" / f"{job_id}.out"

    def log() -> str:
        return out.read_text() if out.exists() else ""

    wait_for(lambda: f"step 2/{STEPS}" in log(), timeout=120, every=0.2)
    subprocess.run(["scancel", "--batch", "--signal=USR2", job_id], check=True, timeout=30)
    wait_for(lambda: run_state(launch, run_id) in ("completed", "failed"), timeout=180, every=1)
    text = log()
    assert run_state(launch, run_id) == "completed", text[-3000:]

    # one rank per node, and both stopped at the same step
    stops = re.findall(r"^stopped by signal 12 at step (\d+); requeue$", text, re.M)
    assert len(stops) == 2 and len(set(stops)) == 1, text[-3000:]
    stop = int(stops[0])
    assert text.count(f"resuming from checkpoint-{stop}") == 2 and "restart 1, on dev-n[1-2]" in text
    steps = [int(n) for n in re.findall(rf"^step (\d+)/{STEPS} ", text, re.M)]
    assert steps == list(range(1, STEPS + 1)), steps
    for step in (stop, STEPS):
        checkpoint = run_dir / "checkpoints" / f"checkpoint-{step}"
        assert (checkpoint / "COMPLETE").exists()
        shards = sorted(p.name for p in (checkpoint / f"global_step{step}").glob("zero_pp_rank_*"))
        assert shards == [f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]
    summary = json.loads((run_dir / "results" / "train.json").read_text())
    assert summary["global_step"] == STEPS
    assert summary["checkpoints"] == [f"checkpoint-{stop}", f"checkpoint-{STEPS}"]
    wait_for(lambda: _sacct(job_id).startswith("COMPLETED|"), timeout=30, every=1)
    assert _sacct(job_id) == "COMPLETED|2|dev-n[1-2]"
