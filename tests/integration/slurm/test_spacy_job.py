"""The spaCy baseline on the dev Slurm cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.runs.checkpoints import complete_checkpoints
from tests.support.cli import Launch

SMALL = ["--set", "data.max_train_samples=150", "--set", "train.epochs=2", "--set", "eval.max_samples=100",
         "--set", "data.max_eval_samples=50"]  # fmt: skip


@pytest.mark.slurm
def test_spacy_sm_on_dev_slurm(launch: Launch, tmp_path: Path) -> None:
    from tests.support.cli import require_slurm

    require_slurm()
    proc = launch("recipe", "spacy_sm", "--cluster", "dev-slurm", "--follow", *SMALL,
                  "--set", "tracking.wandb.mode=disabled", timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    assert [p.name for p in complete_checkpoints(run_dir)] == ["checkpoint-1", "checkpoint-2"]
    metrics = json.loads(
        (run_dir / "results" / "checkpoint-2" / "spacy_sm_eval" / "metrics.json").read_text()
    )
    assert metrics["sentences"] == 100 and metrics["strict"]["f1"] > 0.3
