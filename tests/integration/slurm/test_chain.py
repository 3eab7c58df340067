"""A `--then` chain on the dev Slurm cluster: one evaluation array submitted from the chain job
(afterok), and none after a failed training."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.chain import THEN, TRAIN, chain_line, check_results, eval_runs, submit_and_leave
from tests.support.cli import Launch, require_slurm, wait_for


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


@pytest.mark.slurm
def test_a_failed_chain_submit_in_a_sweep_spares_the_other_points(
    launch: Launch, chain_world: Path, launch_env: dict[str, str], tmp_path: Path
) -> None:
    """sbatch refuses the first point's chain (a stand-in first on PATH): the sweep id is printed
    first, the second point still gets its chain, the failure is reported, exit 1. It used to stop
    at the first failure and print no sweep id."""
    require_slurm()
    held = tmp_path / "held.yaml"
    held.write_text(
        "name: held\nbackend: slurm\ngpu: {type: a800, memory_gb: 80, per_node: 8, bf16: true}\n"
        "node: {cpus: 16, mem_gb: 16}\nslurm: {partition: gpu, gres_type: a800, extra: {hold: true}}\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/bash\n"
        f'if grep -q "chain of run" "${{@: -1}}" && [ ! -e {bin_dir}/refused ]; then\n'
        f"  touch {bin_dir}/refused\n"
        "  echo 'sbatch: error: Batch job submission failed: stand-in' >&2; exit 1\n"
        'fi\nexec /usr/bin/sbatch "$@"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    launch_env["PATH"] = f"{bin_dir}:{launch_env['PATH']}"
    proc = launch("sweep", "tiny_ner", "--cluster", str(held), "--grid", "train.lr=1e-4,2e-4", *TRAIN, *THEN)
    launch_env["PATH"] = os.environ["PATH"]
    sweep_id = proc.stdout.split()[0] if proc.stdout.strip() else ""
    try:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert sweep_id.startswith("sweep-tiny_ner-"), proc.stdout + proc.stderr
        assert "Batch job submission failed: stand-in" in proc.stderr
        assert "1 of 2 chain(s) not submitted" in proc.stderr
        points = sorted(p for p in chain_world.iterdir() if p.name.startswith("tiny_ner-"))
        infos = [json.loads((p / "launch.json").read_text()) for p in points]
        chains = [(info.get("chain") or {}).get("job_id") for info in infos]
        assert sorted(bool(c) for c in chains) == [False, True], chains
        lines = sorted(chain_line(launch, p.name) for p in points)
        assert lines[0].startswith("chain: not started (") and "stand-in" in lines[0], lines
        assert lines[1] == "chain: waiting (for training to end)", lines
    finally:
        if sweep_id:
            launch("cancel", sweep_id)
