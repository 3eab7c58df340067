"""The token_classification job on the dev Slurm cluster: train, then reeval as one array."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.token_classification import ELECTRA, Run, checkpoint_names, metrics_at, train_and_follow


@pytest.mark.slow
@pytest.mark.slurm
def test_on_slurm_train_then_reeval_as_one_array(run: Run, env: dict[str, str]) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    small = ["--set", "data.max_train_samples=64", "--set", "train.max_steps=4",
             "--set", "train.save_steps=2", "--set", "eval.max_samples=16"]  # fmt: skip
    minilm = train_and_follow(run, env, "minilm_ner", "--cluster", "dev-slurm", *small)
    assert (
        checkpoint_names(minilm) == ["checkpoint-2", "checkpoint-4"]
        and metrics_at(minilm, 4)["sentences"] == 16
    )
    electra = train_and_follow(run, env, *ELECTRA[:1], "--cluster", "dev-slurm", *ELECTRA[1:])
    assert metrics_at(electra, 8)["sentences"] == 32

    settings = ["--set", "eval.max_samples=12"]  # another eval recipe: every checkpoint to score
    proc = run("reeval", electra.name, "--cluster", "dev-slurm", *settings)
    assert proc.returncode == 0, proc.stderr
    run_ids = proc.stdout.split()
    assert len(run_ids) == 2
    runs = Path(env["LAUNCH_RUNS"])
    job_ids = [json.loads((runs / r / "launch.json").read_text())["job_ids"][0] for r in run_ids]
    assert len({j.split("_")[0] for j in job_ids}) == 1  # one array
    again = run("reeval", electra.name, "--cluster", "dev-slurm", *settings)
    assert "nothing to do" in again.stdout, again.stdout + again.stderr

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not all(
        any((electra / "results" / f"checkpoint-{s}").glob("*/metrics.json"))
        and metrics_at(electra, s)["sentences"] == 12
        for s in (4, 8)
    ):
        time.sleep(3)
    for step in (4, 8):
        metrics = metrics_at(electra, step)
        assert metrics["sentences"] == 12 and metrics["run_id"] in run_ids
