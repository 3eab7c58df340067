"""The tiny NER training run on the local backend: checkpoints, W&B offline, SIGUSR2 then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Launch, wait_for
from tests.support.wandb_offline import read_run


def _python_job(run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.train", "--run-dir", str(run_dir)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


TINY = ["--set", "data.max_train_samples=160", "--set", "train.logging_steps=5"]


@pytest.mark.slow
def test_tiny_ner_trains_checkpoints_and_logs_to_wandb(launch: Launch, tmp_path: Path) -> None:
    proc = launch(
        "recipe", "tiny_ner", "--cluster", "local", "--follow", *TINY,
        "--set", "train.max_steps=30", "--set", "train.save_steps=10", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_id = proc.stdout.splitlines()[0]
    run_dir = tmp_path / "runs" / run_id
    steps = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert steps == [10, 20, 30]
    for step in steps:
        ckpt = run_dir / "checkpoints" / f"checkpoint-{step}"
        assert (ckpt / "COMPLETE").exists() and (ckpt / "model.safetensors").exists()
        assert (ckpt / "tokenizer.json").exists()
    summary = json.loads((run_dir / "results" / "train.json").read_text())
    losses = [h["loss"] for h in summary["history"]]
    assert summary["global_step"] == 30 and losses[-1] < losses[0]
    assert all("useful_tokens_per_s" in h and h["padding_fraction"] < 0.1 for h in summary["history"][1:])
    info = json.loads((run_dir / "launch.json").read_text())
    wandb = info["wandb"]["train"]
    assert wandb["mode"] == "offline"
    offline = Path(wandb["offline_dir"])
    assert offline.is_dir() and list(offline.glob("*.wandb")), "no offline W&B run file"
    logged = read_run(offline)
    assert (logged.group, logged.job_type, logged.run_id) == ("tiny_ner", "train", wandb["id"])
    assert logged.config["name"] == "tiny_ner" and logged.config["train"]["max_steps"] == 30
    keys = set().union(*logged.history)
    assert {"train/loss", "train/learning_rate", "train/useful_tokens_per_s"} <= keys
    assert "train/padding_fraction" in keys
    assert f"wandb sync {offline}" in launch("status", run_id, check=True).stdout


@pytest.mark.slow
def test_signal_checkpoints_then_resume_finishes_the_steps(launch: Launch, launch_env: dict[str, str],
                                                         tmp_path: Path) -> None:  # fmt: skip
    proc = launch(
        "recipe", "tiny_ner", "-c", "local", *TINY, "--set", "train.max_steps=40",
        "--set", "train.save_steps=10", "--set", "tracking.wandb.mode=disabled", check=True,
    )  # fmt: skip
    run_dir = tmp_path / "runs" / proc.stdout.splitlines()[0]
    wait_for(lambda: (run_dir / "checkpoints" / "checkpoint-10" / "COMPLETE").exists(), timeout=300)
    pids = subprocess.run(["pgrep", "-f", "--", f"jobs.train --run-dir {run_dir}"], capture_output=True,
                          text=True).stdout.split()  # fmt: skip
    assert pids
    os.kill(int(pids[0]), signal.SIGUSR2)
    state = run_dir / ".local_state.json"
    wait_for(lambda: json.loads(state.read_text()).get("exit_code") is not None, timeout=120)
    assert json.loads(state.read_text())["exit_code"] == 3
    saved = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert saved[-1] >= 10 and all((run_dir / "checkpoints" / f"checkpoint-{s}" / "COMPLETE").exists()
                                   for s in saved)  # fmt: skip
    partial = run_dir / "checkpoints" / "checkpoint-39"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    job = _python_job(run_dir, launch_env)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out[-3000:]
    assert f"resuming from checkpoint-{saved[-1]}" in out
    assert "removing incomplete checkpoint-39" in out and not partial.exists()
    assert json.loads((run_dir / "results" / "train.json").read_text())["global_step"] == 40
