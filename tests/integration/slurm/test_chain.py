"""A `--then` chain on the dev Slurm cluster: one evaluation array submitted from the chain job
(afterok), and none after a failed training."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.chain import THEN, TRAIN, chain_line, check_results, eval_runs, submit_and_leave
from tests.support.cli import Launch, wait_for


def _squeue(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True, timeout=30
    ).stdout.strip()


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_chain_evaluates_and_benches_after_the_cli_exited(launch: Launch, chain_world: Path) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    run_id = submit_and_leave(launch, "dev-slurm")
    info = json.loads((chain_world / run_id / "launch.json").read_text())
    script = (chain_world / run_id / "chain" / "chain.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{info['job_ids'][0]}" in script
    assert "#SBATCH --kill-on-invalid-dep=yes" in script and "#SBATCH --cpus-per-task=1" in script
    wait_for(lambda: chain_line(launch, run_id).startswith(("chain: completed", "chain: failed")), 300, 3)
    assert chain_line(launch, run_id) == "chain: completed (2 evaluation(s) completed)"
    check_results(chain_world, run_id)
    eval_jobs = {
        json.loads((e / "launch.json").read_text())["job_ids"][0].split("_")[0]
        for e in eval_runs(chain_world)
    }
    assert len(eval_jobs) == 1  # one array, submitted from the chain job


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_failed_training_starts_no_evaluation(
    launch: Launch, chain_world: Path, tmp_path: Path
) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    empty = tmp_path / "no-tokenizer"
    empty.mkdir()  # passes every launch-time check; the job fails loading it
    proc = launch(
        "recipe", "tiny_ner", "--cluster", "dev-slurm", *TRAIN, "--set", f"model.tokenizer={empty}", *THEN,
        "--follow", timeout=240,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    run_id = proc.stdout.split()[0]
    assert "chain: not started (training failed)" in proc.stderr
    assert chain_line(launch, run_id) == "chain: not started (training failed)"
    chain_job = json.loads((chain_world / run_id / "launch.json").read_text())["chain"]["job_id"]
    wait_for(lambda: _squeue(chain_job) == "", 60, 1)  # Slurm cancelled it: it does not pend forever
    assert eval_runs(chain_world) == [] and not (chain_world / run_id / "bench").exists()
