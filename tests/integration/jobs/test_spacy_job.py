"""The spaCy job run directly: SIGUSR2 saves the epoch in progress and the requeued job finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from launcher.config.recipe import load_recipe
from launcher.runs.checkpoints import MARKER
from tests.support.paths import ROOT

SMALL = ["--set", "data.max_train_samples=150", "--set", "train.epochs=2", "--set", "eval.max_samples=100",
         "--set", "data.max_eval_samples=50"]  # fmt: skip


def test_sigusr2_saves_the_epoch_in_progress_and_the_requeued_job_finishes(tmp_path: Path) -> None:
    recipe = load_recipe("spacy_sm", [s for s in SMALL if s != "--set"] + ["tracking.wandb.mode=disabled"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text(recipe.to_yaml())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "jobs.spacy", "--run-dir", str(run_dir)]
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert job.stdout is not None
    for line in job.stdout:
        if "from scratch" in line:
            job.send_signal(signal.SIGUSR2)
            break
    out = job.stdout.read()
    assert job.wait(timeout=600) == 3, out
    assert "requeue" in out
    marker = json.loads((run_dir / "checkpoints" / "checkpoint-1" / MARKER).read_text())
    assert marker["partial"]["offset"] < 150 and marker["updates"] >= 1

    (run_dir / "checkpoints" / "checkpoint-2").mkdir()  # cut short before its marker: never resumed from
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "removing incomplete checkpoint-2" in again.stdout
    assert f"resuming after checkpoint-1 (0 epochs, {marker['partial']['offset']} sentences)" in again.stdout
    for step in (1, 2):
        done = json.loads((run_dir / "checkpoints" / f"checkpoint-{step}" / MARKER).read_text())
        assert done["partial"] is None
    assert (run_dir / "results" / "checkpoint-2" / "spacy_sm_eval" / "metrics.json").is_file()
