"""The spacy job scores its last checkpoint on `eval.split`, as its eval-only scoring does (issue 26
item 24: the job kind reads eval.split; its training took the test split whatever the recipe said,
and wrote `split: validation` beside test scores)."""

from __future__ import annotations

import json
from pathlib import Path

from jobs.data.gmb import recipe_split
from launcher.config.recipe import read_resolved
from tests.support.cli import Launch


def test_a_spacy_training_scores_the_split_the_recipe_names(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=30", "train.epochs=1", "eval.split=validation",
            "data.max_eval_samples=12", "tracking.wandb.mode=disabled"]  # fmt: skip
    small = [arg for s in sets for arg in ("--set", s)]
    proc = launch("recipe", "spacy_sm", "--cluster", "local", "--follow", *small, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    results = run_dir / "results" / "checkpoint-1" / "spacy_sm_eval"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["split"] == "validation" and metrics["sentences"] == 12, metrics
    rows = [json.loads(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    validation = recipe_split(read_resolved(run_dir).data).validation
    assert [r["id"] for r in rows] == [s.id for s in validation[:12]]
