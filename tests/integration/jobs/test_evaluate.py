"""The evaluate job (jobs.evaluate) on the tiny model: predictions and metrics layout, metrics equal a
rescore, W&B at the training step, the JSON stopping criterion, batched generation, bf16 on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jobs.data.gmb import eval_sentences
from jobs.engines.hf import generate, json_stopping_criteria, load
from jobs.prompts import render_prompt
from jobs.tiny.models import resolve
from launcher.config.recipe import load_recipe, read_resolved
from launcher.runs.checkpoints import mark_complete
from launcher.runs.results import eval_digest, fingerprint
from tests.support.cli import Launch
from tests.support.paths import ROOT
from tests.support.wandb_offline import read_run

STEP = 5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training run directory with one complete checkpoint: the tiny model as built."""
    run_dir = tmp_path_factory.mktemp("train") / "tiny_ner-20260101-0000-abcd"
    ckpt = run_dir / "checkpoints" / f"checkpoint-{STEP}"
    shutil.copytree(resolve("tiny://qwen2-gmb"), ckpt)
    (run_dir / "recipe.yaml").write_text(load_recipe("tiny_ner").to_yaml())
    mark_complete(ckpt, step=STEP)
    return ckpt


@pytest.fixture(scope="module")
def evaluated(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eval run of the checkpoint (12 sentences, batches of 5), W&B offline; its run dir."""
    run_dir = tmp_path_factory.mktemp("eval") / "tiny_ner_eval-20260101-0001-beef"
    run_dir.mkdir()
    overrides = [f"model.name_or_path={checkpoint}", "eval.max_samples=12", "eval.batch_size=5",
                 "eval.max_new_tokens=24"]  # fmt: skip
    (run_dir / "recipe.yaml").write_text(load_recipe("tiny_ner_eval", overrides).to_yaml())
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.evaluate", "--run-dir", str(run_dir)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_predictions_and_metrics_layout(evaluated: Path, checkpoint: Path) -> None:
    results = evaluated / "results" / checkpoint.name / "tiny_ner_eval"
    assert sorted(p.name for p in results.iterdir()) == ["metrics.json", "predictions.jsonl"]
    rows = [json.loads(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    recipe = read_resolved(evaluated)
    sentences = eval_sentences(recipe)
    assert len(rows) == len(sentences) == 12
    for row, sentence in zip(rows, sentences, strict=True):
        assert {
            "id",
            "tokens",
            "gold_tags",
            "gold",
            "raw",
            "entities",
            "status",
            "new_tokens",
            "stop",
        } <= set(row)
        assert (row["id"], row["tokens"], row["gold_tags"]) == (sentence.id, sentence.tokens, sentence.tags)
        assert row["status"] in ("ok", "repaired", "truncated", "failed")
        assert (row["entities"] is None) == (row["status"] == "failed")
        assert row["stop"] in ("json", "eos", "length") and 0 <= row["new_tokens"] <= 24
    metrics = json.loads((results / "metrics.json").read_text())
    assert {"strict", "seed", "token", "sentence", "parse_failures", "sentences"} <= set(metrics)
    assert metrics["checkpoint"] == str(checkpoint) and metrics["step"] == STEP
    assert metrics["fingerprint"] == fingerprint(str(checkpoint), recipe)
    assert metrics["recipe"] == "tiny_ner_eval" and metrics["recipe_digest"] == eval_digest(recipe)
    assert metrics["training_run"] == checkpoint.parent.parent.name
    assert metrics["sentences"] == 12 and metrics["sentences_per_s"] > 0
    assert metrics["dtype"] == ("fp32" if not torch.cuda.is_available() else metrics["dtype"])


def test_metrics_equal_a_rescore_of_the_predictions(
    evaluated: Path, checkpoint: Path, launch: Launch
) -> None:
    results = evaluated / "results" / checkpoint.name / "tiny_ner_eval"
    metrics = json.loads((results / "metrics.json").read_text())
    rescored = json.loads(launch("score", str(results / "predictions.jsonl"), "--json", check=True).stdout)
    assert set(rescored) <= set(metrics)
    for key, value in rescored.items():
        assert metrics[key] == value, key


def test_wandb_logs_the_metrics_at_the_training_step(evaluated: Path) -> None:
    info = json.loads((evaluated / "launch.json").read_text())
    run = read_run(Path(info["wandb"]["eval"]["offline_dir"]))
    assert run.job_type == "eval" and run.group == "tiny_ner"
    assert run.config["step"] == STEP and run.config["model"]["name_or_path"].endswith(f"checkpoint-{STEP}")
    logged = [h for h in run.history if "eval/f1" in h]
    assert len(logged) == 1
    assert logged[0]["train/global_step"] == STEP
    metrics = json.loads(next((evaluated / "results").glob("*/*/metrics.json")).read_text())
    assert logged[0]["eval/f1"] == metrics["strict"]["f1"]


def test_stopping_criterion_ends_each_row_at_its_closing_brace(checkpoint: Path) -> None:
    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={checkpoint}"])
    _, tokenizer, _ = load(recipe)
    texts = [
        '{"entities": [{"entity": "Paris", "order": 0, "label": "geo"}]} trailing words',
        '<think>{"x": 1}</think>{"entities": []}<|im_end|>',
        '{"entities": [{"entity": "cut',
    ]
    expected_suffix = ['"geo"}]}', '</think>{"entities": []}', None]
    prompt = tokenizer("Sentence: x", add_special_tokens=False)["input_ids"]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    stop = json_stopping_criteria(tokenizer, len(prompt), len(rows))
    first_true: list[int | None] = [None] * len(rows)
    for k in range(1, width + 1):
        ids = torch.tensor([prompt + (r + [pad] * width)[:k] for r in rows])
        done = stop(ids, None).tolist()
        for i, flag in enumerate(done):
            if flag and first_true[i] is None:
                first_true[i] = k
    for i, suffix in enumerate(expected_suffix):
        if suffix is None:
            assert first_true[i] is None
            continue
        k = first_true[i]
        assert k is not None
        assert tokenizer.decode(rows[i][:k]).endswith(suffix)
        assert not tokenizer.decode(rows[i][: k - 1]).endswith(suffix)


def test_batched_left_padded_generation_equals_one_at_a_time(checkpoint: Path) -> None:
    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={checkpoint}"])
    model, tokenizer, _ = load(recipe)
    sentences = eval_sentences(load_recipe("tiny_ner_eval", ["eval.max_samples=40"]))
    picked = sorted(sentences, key=lambda s: len(s.tokens))
    picked = [picked[0], picked[-1], picked[5], picked[-6], picked[20], picked[12], picked[30]]
    prompts = [render_prompt(tokenizer, s.text) for s in picked]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert len(set(lengths)) > 3  # the batches below really are padded
    batched = generate(model, tokenizer, prompts, batch_size=3, max_new_tokens=12)
    alone = [generate(model, tokenizer, [p], batch_size=1, max_new_tokens=12)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.new_tokens for g in batched] == [g.new_tokens for g in alone]


def test_bf16_without_a_gpu_generates_under_autocast_over_fp32_embeddings(checkpoint: Path) -> None:
    from jobs.engines.hf import HFEngine
    from jobs.engines.packed import PackedLinear

    recipe = load_recipe("tiny_ner_eval", [f"model.name_or_path={checkpoint}", "model.dtype=bf16"])
    engine = HFEngine(recipe, max_new_tokens=8, batch_size=2)
    gpu = torch.cuda.is_available()  # a GPU loads bf16 weights instead
    assert engine.precision == ("bf16" if gpu else "bf16-autocast")
    assert next(engine.model.parameters()).dtype == (torch.bfloat16 if gpu else torch.float32)
    head = engine.model.lm_head  # on a CPU cast once (prepacked where oneDNN runs bf16), not per call
    assert (head.packed if isinstance(head, PackedLinear) else head.weight).dtype == torch.bfloat16
    sentences = eval_sentences(load_recipe("tiny_ner_eval", ["eval.max_samples=3"]))
    gens = engine.generate([render_prompt(engine.tokenizer, s.text) for s in sentences])
    assert len(gens) == 3 and all(0 < g.new_tokens <= 8 for g in gens)
