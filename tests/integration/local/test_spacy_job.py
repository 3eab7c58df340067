"""The spaCy baseline (jobs.spacy) with the real pinned en_core_web_sm on the local backend: trains,
scores the test split, `launch score`, bench rows, reeval and eval-only.

One small spacy_sm run (150 GMB sentences, 2 epochs) is trained once for the module, W&B offline."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from jobs.data.gmb import Sentence
from launcher.config.recipe import load_recipe, read_resolved
from launcher.runs.checkpoints import MARKER, complete_checkpoints
from launcher.runs.results import fingerprint
from tests.support.cli import Launch, cli_runner, isolated_env
from tests.support.paths import ROOT
from tests.support.wandb_offline import read_run

SMALL = ["--set", "data.max_train_samples=150", "--set", "train.epochs=2", "--set", "eval.max_samples=100",
         "--set", "data.max_eval_samples=50"]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Launch]:
    root = tmp_path_factory.mktemp("spacy")
    env = {**isolated_env(root), "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    return root, cli_runner(env)


@pytest.fixture(scope="module")
def trained(world: tuple[Path, Launch]) -> Path:
    root, launch = world
    proc = launch("recipe", "spacy_sm", "--cluster", "local", "--follow", *SMALL, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root / "runs" / proc.stdout.split()[0]


def test_spacy_sm_trains_checkpoints_per_epoch_and_scores_the_test_split(trained: Path) -> None:
    assert [p.name for p in complete_checkpoints(trained)] == ["checkpoint-1", "checkpoint-2"]
    marker = json.loads((trained / "checkpoints" / "checkpoint-2" / MARKER).read_text())
    assert marker["step"] == 2 and marker["partial"] is None and marker["dev_f1"] > 0.2
    import spacy

    nlp = spacy.load(trained / "checkpoints" / "checkpoint-2")
    assert {"per", "geo", "org", "tim"} <= set(nlp.get_pipe("ner").labels)

    results = trained / "results" / "checkpoint-2" / "spacy_sm_eval"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["sentences"] == 100 and metrics["split"] == "test" and metrics["step"] == 2
    assert metrics["strict"]["f1"] > 0.3, metrics["strict"]  # the untrained pipeline scores 0: no GMB types
    assert set(metrics) >= {"token", "token_bio", "sentence", "seed", "fingerprint", "params", "checkpoint"}
    recipe = read_resolved(trained)
    test_ids = [s.id for s in _test_split(recipe)[:100]]
    rows = [json.loads(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == test_ids  # the generative runs' held-out sentences
    assert all(len(r["pred_tags"]) == len(r["tokens"]) == len(r["gold_tags"]) for r in rows)

    runs = [read_run(p) for p in sorted((trained / "wandb").glob("offline-run-*"))]
    assert {r.job_type for r in runs} == {"train", "eval"}  # loss by epoch; the test metrics
    epochs = [h for r in runs if r.job_type == "train" for h in r.history if "train/loss" in h]
    assert [h["train/epoch"] for h in epochs] == [1, 2] and all("dev/f1" in h for h in epochs)


def _test_split(recipe: object) -> list[Sentence]:
    from jobs.data.gmb import recipe_split

    return recipe_split(recipe.data).test  # type: ignore[attr-defined]


def test_launch_score_reads_the_predictions(trained: Path, world: tuple[Path, Launch]) -> None:
    _, launch = world
    results = trained / "results" / "checkpoint-2" / "spacy_sm_eval"
    proc = launch("score", str(results / "predictions.jsonl"), "--json")
    assert proc.returncode == 0, proc.stderr
    scored = json.loads(proc.stdout)
    metrics = json.loads((results / "metrics.json").read_text())
    assert scored["strict"]["f1"] == pytest.approx(metrics["strict"]["f1"])


def test_bench_has_an_entity_and_a_token_row_for_the_baseline(
    trained: Path, world: tuple[Path, Launch], tmp_path: Path
) -> None:
    _, launch = world
    proc = launch("bench", trained.name, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "benchmark.csv").open()))
    ours = [r for r in rows if r["published"] == "False"]
    metrics = json.loads(
        (trained / "results" / "checkpoint-2" / "spacy_sm_eval" / "metrics.json").read_text()
    )
    assert [r["level"] for r in ours] == ["entity", "token (BIO)"]
    assert {r["model"] for r in ours} == {"en_core_web_sm"}
    assert float(ours[0]["f1"]) == metrics["strict"]["f1"]
    assert float(ours[1]["f1"]) == metrics["token_bio"]["f1"]
    assert ours[0]["size"].endswith("M") and "spaCy NER trained on GMB, 2 epochs" in ours[0]["notes"]
    published = {(r["model"], r["level"], r["f1"]) for r in rows if r["published"] == "True"}
    assert {("spaCy md", "entity", "0.8483"), ("ELECTRA-base", "token (BIO)", "0.8")} <= published


def test_reeval_scores_the_unscored_checkpoint_and_skips_the_scored_one(
    trained: Path, world: tuple[Path, Launch]
) -> None:
    """`launch reeval` of a spacy run: the job kind is its own evaluator (eval.only on each
    checkpoint); the last checkpoint, scored at the end of training, is not scored again."""
    _, launch = world
    proc = launch("reeval", trained.name, "--cluster", "local", "--follow", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1/1 evaluation(s) completed" in proc.stderr, proc.stderr
    metrics = json.loads(
        (trained / "results" / "checkpoint-1" / "spacy_sm_eval" / "metrics.json").read_text()
    )
    assert metrics["step"] == 1 and metrics["sentences"] == 100 and "token_bio" in metrics
    again = launch("reeval", trained.name, "--cluster", "local")
    assert again.returncode == 0 and "nothing to do" in (again.stdout + again.stderr).lower()


def test_eval_only_scores_a_checkpoint_without_training(trained: Path, world: tuple[Path, Launch]) -> None:
    """What `launch reeval` submits for a spacy run: the job on one checkpoint with eval.only."""
    _, launch = world
    ckpt = trained / "checkpoints" / "checkpoint-1"
    out = trained / "results" / "checkpoint-1" / "by_hand"
    sets = ["eval.only=true", f"model.name_or_path={ckpt}", f"eval.results_dir={out}", "eval.max_samples=60"]
    proc = launch("recipe", "spacy_sm", "--cluster", "local", "--follow",
                  *[a for s in sets for a in ("--set", s)], timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    eval_run = Path(trained.parent / proc.stdout.split()[0])
    assert not (eval_run / "checkpoints").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sentences"] == 60 and metrics["step"] == 1 and metrics["training_run"] == trained.name
    recipe = load_recipe("spacy_sm", sets)
    assert metrics["fingerprint"] == fingerprint(str(ckpt), recipe)
