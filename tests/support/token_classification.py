"""What the token_classification tests share on every backend: the tiny CPU settings, the tiny
ELECTRA recipe, training through `launch recipe --follow` and reading the run back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess]

TINY_CPU = ["--set", "resources.gpus_per_node=0", "--set", "data.max_train_samples=160",
            "--set", "train.max_steps=8", "--set", "train.save_steps=4", "--set", "eval.max_samples=32",
            "--set", "train.lr=1e-3"]  # fmt: skip

ELECTRA = ["electra_base", "--set", "model.name_or_path=tiny://electra-gmb", *TINY_CPU]


def train_and_follow(run: Run, env: dict[str, str], *args: str) -> Path:
    """`launch recipe ARGS... --follow` to the end; the run directory."""
    proc = run("recipe", *args, "--follow", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]


def metrics_at(run_dir: Path, step: int) -> dict:
    """The metrics of checkpoint-STEP (whichever eval recipe scored it)."""
    return json.loads(next((run_dir / "results" / f"checkpoint-{step}").glob("*/metrics.json")).read_text())


def checkpoint_names(run_dir: Path) -> list[str]:
    """The run's checkpoint directories, by step."""
    return sorted((p.name for p in (run_dir / "checkpoints").iterdir()), key=lambda n: int(n.split("-")[1]))
