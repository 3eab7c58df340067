"""`launch status` on real local runs: a running training run's progress, a failed run's error line,
token-classification and spaCy runs' progress and best F1."""

from __future__ import annotations

import json
import re
from pathlib import Path

from launcher.views.status import (
    StatusReport,
)
from tests.support.cli import Launch, wait_for


def test_a_running_training_run_shows_its_progress(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=160", "train.logging_steps=2", "train.max_steps=40",
            "train.save_steps=100", "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    run_id = launch("recipe", "tiny_ner", "-c", "local", *args, check=True).stdout.split()[0]
    run_dir = tmp_path / "runs" / run_id
    try:
        wait_for(lambda: (run_dir / "progress.json").is_file(), timeout=240, every=1)
        doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
        (entry,) = doc.entries
        assert entry.kind == "run" and entry.state == "running" and entry.progress is not None
        assert entry.progress.total_steps == 40 and 1 <= entry.progress.step <= 40
        assert entry.progress.loss is not None and entry.progress.tokens_per_s
        table = launch("status", check=True).stdout
        assert re.search(r"step \d+/40  loss \d+\.\d{3}  \d+ tok/s  ETA ", table), table
        wait_for(lambda: "step 2/40  loss " in _out(run_dir), timeout=120, every=1)
        log = _out(run_dir)
        assert "{'loss'" not in log and "'learning_rate'" not in log, log  # no raw dicts
        line = next(x for x in log.splitlines() if x.startswith("step 2/40"))
        assert " tok/s  ETA " in line and "  lr " in line, line
    finally:
        launch("cancel", run_id)


def _out(run_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (run_dir / "logs").glob("*.out"))


def test_a_failed_run_shows_its_error_line_in_the_table(launch: Launch) -> None:
    proc = launch(
        "recipe", "tiny_smoke", "-c", "local", "--follow", "--set", "env={SMOKE_FAIL_AT: '2'}",
        "--set", "train.max_steps=5",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    table = launch("status", check=True).stdout
    assert "failed" in table and "failing at step 2" in table, table


def test_a_token_classification_run_shows_progress_then_its_best_f1(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=64", "train.max_steps=6", "train.save_steps=6", "train.logging_steps=2",
            "eval.max_samples=16", "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    proc = launch("recipe", "minilm_ner", "--cluster", "local", *args, "--follow", timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_id = proc.stdout.split()[0]
    doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
    (entry,) = doc.entries
    assert entry.kind == "run" and entry.progress is not None and entry.progress.step == 6
    assert entry.progress.total_steps == 6 and entry.progress.tokens_per_s  # num_input_tokens_seen
    assert entry.best is not None and entry.best.checkpoint == "checkpoint-6"
    results = tmp_path / "runs" / run_id / "results"
    (scored,) = (results / "checkpoint-6").glob("*/metrics.json")  # results/<checkpoint>/<eval recipe>/
    metrics = json.loads(scored.read_text())
    assert entry.best.f1 == metrics["strict"]["f1"]
    assert f"best F1 {entry.best.f1:.4f} at checkpoint-6" in launch("status", check=True).stdout
    assert "step 2/6  loss " in _out(tmp_path / "runs" / run_id)


def test_a_spacy_run_writes_progress_each_epoch(launch: Launch, tmp_path: Path) -> None:
    sets = ["data.max_train_samples=60", "train.epochs=2", "eval.max_samples=20", "data.max_eval_samples=20",
            "tracking.wandb.mode=disabled"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    proc = launch("recipe", "spacy_sm", "--cluster", "local", "--follow", *args, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = StatusReport.model_validate_json(launch("status", "--json", check=True).stdout)
    (entry,) = doc.entries
    assert entry.kind == "run" and entry.progress is not None
    assert entry.progress.epoch == 2 and entry.progress.eta_s == 0 and entry.progress.tokens_per_s
    assert entry.best is not None and entry.best.checkpoint == "checkpoint-2"
