"""Two eval recipes on one checkpoint on the local backend: both results survive, reeval skips only
what this recipe scored, bench rows per checkpoint and recipe, an old-layout run stays readable."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from launcher.config.recipe import load_recipe
from launcher.runs.results import (
    eval_digest,
)

Run = Callable[..., subprocess.CompletedProcess]

VARIANT = ["--set", "eval.max_samples=6", "--set", "eval.max_new_tokens=16"]

SHORT = "tiny_ner_eval_short"


@pytest.fixture(scope="module")
def short_recipe(env: dict[str, str]) -> Path:
    """A second eval recipe: tiny_ner_eval on 4 sentences, under its own name."""
    data = yaml.safe_load(Path("recipes/tiny_ner_eval.yaml").read_text())
    data["name"] = SHORT
    data["eval"].update(max_samples=4, max_new_tokens=16)
    path = Path(env["LAUNCH_HOME"]).parent / f"{SHORT}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def evaluated(run: Run, env: dict[str, str], short_recipe: Path) -> Path:
    """The tiny_ner run, its checkpoint scored by both eval recipes."""
    proc = run("recipe", "tiny_ner", "--cluster", "local", "--follow", "--set", "train.max_steps=10",
               "--set", "train.save_steps=10", "--set", "data.max_train_samples=40")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(env["LAUNCH_RUNS"]) / proc.stdout.split()[0]
    for args in (["--recipe", "tiny_ner_eval", *VARIANT], ["--recipe", str(short_recipe)]):
        done = run("reeval", run_dir.name, "--cluster", "local", "--follow", *args)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert "1/1 evaluation(s) completed" in done.stderr
    return run_dir


@pytest.mark.slow
def test_two_eval_recipes_on_one_checkpoint_both_survive(evaluated: Path) -> None:
    found = sorted(
        p.relative_to(evaluated / "results").as_posix() for p in evaluated.glob("results/**/metrics.json")
    )
    variant = load_recipe("tiny_ner_eval", VARIANT[1::2])
    assert found == [
        f"checkpoint-10/tiny_ner_eval-{eval_digest(variant)[:8]}/metrics.json",
        f"checkpoint-10/{SHORT}/metrics.json",
    ]
    by_name = {p.parent.name: json.loads(p.read_text()) for p in evaluated.glob("results/*/*/metrics.json")}
    assert sorted(m["sentences"] for m in by_name.values()) == [4, 6]
    for metrics in by_name.values():
        assert (evaluated / "results" / "checkpoint-10").is_dir() and metrics["step"] == 10


@pytest.mark.slow
def test_reeval_skips_only_what_this_eval_recipe_scored(
    evaluated: Path, run: Run, short_recipe: Path
) -> None:
    for args in (["--recipe", "tiny_ner_eval", *VARIANT], ["--recipe", str(short_recipe)]):
        proc = run("reeval", evaluated.name, "--cluster", "local", *args)
        assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stdout + proc.stderr
        assert "skip checkpoint-10: already scored" in proc.stderr
    third = run("reeval", evaluated.name, "--cluster", "local", "--dry-run", "--set", "eval.max_samples=5")
    assert third.returncode == 0 and "#   checkpoint-10 (step 10)" in third.stdout, third.stderr


@pytest.mark.slow
def test_bench_shows_a_row_per_checkpoint_and_eval_recipe_with_its_sample_size(
    evaluated: Path, run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    proc = run("bench", evaluated.name, "--out", str(out), "--no-wandb")
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in csv.DictReader((out / "benchmark.csv").open()) if r["run"] == evaluated.name]
    assert [(r["checkpoint"], r["eval"].rsplit("-", 1)[0], r["n"]) for r in rows] == [
        ("checkpoint-10", "tiny_ner_eval", "6"), ("checkpoint-10", SHORT, "4")]  # fmt: skip
    md = (out / "benchmark.md").read_text()
    assert md.count("| ran here |") == 2 and "| published |" in md and "source: 'ran here'" in md
    assert "ran here" in proc.stdout and "published" in proc.stdout
    for png in ("f1_by_step.png", "loss_by_step.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_an_old_layout_run_stays_readable(
    evaluated: Path, run: Run, short_recipe: Path, tmp_path: Path
) -> None:
    """A run from before results per eval recipe: results/checkpoint-10/{metrics.json,predictions.jsonl}."""
    old = tmp_path / evaluated.name
    shutil.copytree(evaluated, old)
    ckpt_results = old / "results" / "checkpoint-10"
    for path in (ckpt_results / SHORT).iterdir():
        path.rename(ckpt_results / path.name)
    for child in ckpt_results.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    assert sorted(p.name for p in ckpt_results.iterdir()) == ["metrics.json", "predictions.jsonl"]

    skip = run("reeval", str(old), "--cluster", "local", "--recipe", str(short_recipe))
    assert skip.returncode == 0 and "nothing to do" in skip.stdout, skip.stdout + skip.stderr
    bench = run("bench", str(old), "--out", str(tmp_path / "bench"), "--no-wandb")
    assert bench.returncode == 0, bench.stderr
    rows = [
        r for r in csv.DictReader((tmp_path / "bench" / "benchmark.csv").open()) if r["published"] == "False"
    ]
    assert [(r["checkpoint"], r["eval"], r["n"]) for r in rows] == [("checkpoint-10", SHORT, "4")]
    score = run("score", str(ckpt_results / "predictions.jsonl"), "--json")
    assert score.returncode == 0, score.stderr
    metrics = json.loads((ckpt_results / "metrics.json").read_text())
    assert json.loads(score.stdout)["strict"] == metrics["strict"]
