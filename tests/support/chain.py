"""What the `--then` chain tests share on every backend: the tiny training, the chain's steps, the
eval recipe they score with, and reading a chain's outcome back (the `chain_world` fixture in
conftest.py puts the eval recipe in place)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.support.cli import Launch, run_state

TRAIN = ["--set", "train.max_steps=4", "--set", "train.save_steps=2", "--set", "data.max_train_samples=40"]
THEN = ["--then", "reeval=chain_eval", "--then", "bench"]
EVAL_RECIPE = """\
# tiny_ner_eval on 8 sentences: the chain tests' eval recipe.
name: chain_eval
job: evaluate
task: ner
model: {name_or_path: "tiny://qwen2-gmb", dtype: auto}
resources: {nodes: 1, gpus_per_node: 0, cpus_per_gpu: 1, time: "00:10:00"}
data: {dataset: gmb, test_size: 0.3, seed: 42}
eval: {split: test, batch_size: 8, max_new_tokens: 32, max_samples: 8}
"""


def chain_line(launch: Launch, run_id: str) -> str:
    """The `chain: ...` line of `launch status RUN`."""
    out = launch("status", run_id, check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("chain:"))


def eval_runs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.name.startswith("chain_eval-")) if runs.is_dir() else []


def check_results(runs: Path, run_id: str) -> None:
    """Both checkpoints scored by their own evaluation run, and benched in the training run."""
    run_dir = runs / run_id
    info = json.loads((run_dir / "launch.json").read_text())
    assert info["then"] == ["reeval=chain_eval", "bench"]
    metrics = [json.loads(p.read_text()) for p in run_dir.glob("results/**/metrics.json")]
    assert sorted(m["step"] for m in metrics) == [2, 4]
    assert {m["training_run"] for m in metrics} == {run_id}
    evals = [e for e in eval_runs(runs) if json.loads((e / "launch.json").read_text())["parent"] == run_id]
    assert len(evals) == 2
    rows = list(csv.DictReader((run_dir / "bench" / "benchmark.csv").open()))
    assert sorted(int(r["step"]) for r in rows if r["run"] == run_id) == [2, 4]
    assert "checkpoint-4" in (run_dir / "bench" / "benchmark.md").read_text()


def submit_and_leave(launch: Launch, cluster: str) -> str:
    """Submit with --then; the CLI process has exited when this returns, training has not ended."""
    proc = launch("recipe", "tiny_ner", "--cluster", cluster, *TRAIN, *THEN, check=True)
    run_id = proc.stdout.split()[0]
    assert "then: reeval=chain_eval, bench: chain job" in proc.stderr
    assert run_state(launch, run_id) in ("pending", "running")
    assert chain_line(launch, run_id) == "chain: waiting (for training to end)"
    return run_id
