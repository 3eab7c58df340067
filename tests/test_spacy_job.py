"""The spaCy baseline (jobs.spacy) with the real pinned en_core_web_sm: tags and metrics by hand,
pipeline resolution, bad input through the CLI, and end to end on the local backend and dev Slurm.

One small spacy_sm run (150 GMB sentences, 2 epochs) is trained once for the module, W&B offline.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.data.gmb import Sentence
from launcher.config.recipe import load_recipe, read_resolved
from launcher.errors import UserError
from launcher.kinds.spacy import PIPELINES, resolve
from launcher.runs.checkpoints import MARKER, complete_checkpoints
from launcher.runs.results import fingerprint
from tests.conftest import ROOT, Launch, cli_runner, isolated_env
from tests.wandb_offline import read_run

SMALL = ["--set", "data.max_train_samples=150", "--set", "train.epochs=2", "--set", "eval.max_samples=100",
         "--set", "data.max_eval_samples=50"]  # fmt: skip


# ----------------------------------------------------------------------- fast: tags, metrics, names


def test_docs_carry_gmb_tokens_and_tags_exactly() -> None:
    import spacy

    from jobs.spacy.job import clean_tags, doc_tags, gmb_doc

    vocab = spacy.blank("en").vocab
    tokens = ["Mr.", "Blair", "visited", "New", "York", "on", "Monday", "."]
    tags = ["B-per", "I-per", "O", "B-geo", "I-geo", "O", "B-tim", "O"]
    doc = gmb_doc(vocab, tokens, tags)
    assert [t.text for t in doc] == tokens
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "per"), (3, 5, "geo"), (6, 7, "tim")]
    assert doc_tags(doc) == tags
    assert clean_tags(["I-geo", "O", "B-org", "I-per"]) == ["O", "O", "B-org", "O"]  # seqeval strict
    assert gmb_doc(vocab, tokens).ents == ()


def test_research_token_level_by_hand() -> None:
    from jobs.spacy.job import bio_token_prf, score_tags

    gold = ["B-per", "I-per", "O", "B-geo"]
    pred = ["B-per", "B-per", "B-org", "O"]
    # word 0 tp; word 1 B-per vs I-per: fp + fn; word 2 fp; word 3 fn
    assert bio_token_prf([gold], [pred]) == {
        "precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "tp": 1, "fp": 2, "fn": 2,
    }  # fmt: skip
    sentence = Sentence(1, ["Tony", "Blair", "in", "Paris"], gold)
    metrics = score_tags([sentence], [pred])
    strict = metrics["strict"]  # gold: per 0-2, geo 3-4; predicted: per 0-1, per 1-2, org 2-3
    assert (strict["tp"], strict["fp"], strict["fn"]) == (0, 3, 2)
    assert metrics["token_bio"]["tp"] == 1 and metrics["sentences"] == 1


def test_strict_scores_equal_seqeval() -> None:
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from jobs.spacy.job import score_tags

    gold = [["B-per", "I-per", "O", "B-geo"], ["B-tim", "O", "B-org", "I-org"]]
    pred = [["B-per", "I-per", "O", "O"], ["B-tim", "O", "B-org", "O"]]
    sentences = [Sentence(i, ["w"] * 4, g) for i, g in enumerate(gold)]
    ours = score_tags(sentences, pred)["strict"]["f1"]
    assert ours == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))


def test_pipeline_names_resolve_to_the_pinned_packages(tmp_path: Path) -> None:
    assert list(PIPELINES) == ["en_core_web_sm", "en_core_web_md", "en_core_web_lg"]
    for name in ("en_core_web_sm", "en_core_web_md"):
        found = Path(resolve(name))
        assert json.loads((found / "meta.json").read_text())["version"] == "3.8.0"
    with pytest.raises(UserError, match="python -m spacy download en_core_web_lg"):
        resolve("en_core_web_lg")
    with pytest.raises(UserError, match="did you mean 'en_core_web_sm'"):
        resolve("en_core_web_smm")
    with pytest.raises(UserError, match="not a spaCy pipeline directory"):
        resolve(str(tmp_path))


@pytest.mark.parametrize(
    ("recipe", "overrides", "message"),
    [
        ("spacy_lg", [], "model.name_or_path: spaCy pipeline en_core_web_lg is not installed here; install "
                         "it with: python -m spacy download en_core_web_lg"),
        ("spacy_sm", ["resources.gpus_per_node=1"], "resources.gpus_per_node: 1 is a GPU setting"),
        ("spacy_sm", ["method=lora"], "method: lora is a GPU setting"),
        ("spacy_sm", ["model.dtype=bf16"], "model.dtype: bf16 is a GPU setting"),
        ("spacy_sm", ["quantization.mode=int8"], "quantization: int8 is a GPU setting"),
        ("spacy_sm", ["model.name_or_path=en_core_web_xl"], "'en_core_web_xl' is not a spaCy pipeline"),
        ("spacy_sm", ["model.name_or_path=./nowhere"], "'./nowhere' does not exist"),
        ("spacy_sm", ["train.epochs=1.5"], "train.epochs: spaCy trains whole epochs"),
        ("spacy_sm", ["spacy.exclude=[ner]"], "spacy.exclude: ner is the pipe being trained"),
        ("spacy_sm", ["spacy.droput=0.2"], "spacy.droput"),
        ("tiny_ner", ["spacy.dropout=0.2"], "spacy: settings given but job is train"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_created(
    launch: Launch, tmp_path: Path, recipe: str, overrides: list[str], message: str
) -> None:
    args = [a for o in overrides for a in ("--set", o)]
    proc = launch("recipe", recipe, "--cluster", "local", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------- one real run, local backend


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


# ----------------------------------------------------------------------- dev Slurm


@pytest.mark.slurm
def test_spacy_sm_on_dev_slurm(launch: Launch, tmp_path: Path) -> None:
    from tests.test_slurm_cluster import require_slurm

    require_slurm()
    proc = launch("recipe", "spacy_sm", "--cluster", "dev-slurm", "--follow", *SMALL,
                  "--set", "tracking.wandb.mode=disabled", timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / proc.stdout.split()[0]
    assert [p.name for p in complete_checkpoints(run_dir)] == ["checkpoint-1", "checkpoint-2"]
    metrics = json.loads(
        (run_dir / "results" / "checkpoint-2" / "spacy_sm_eval" / "metrics.json").read_text()
    )
    assert metrics["sentences"] == 100 and metrics["strict"]["f1"] > 0.3
